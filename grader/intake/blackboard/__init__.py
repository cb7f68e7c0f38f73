"""Blackboard's Assignment bulk download (gradebook_....zip) in, submissions/<username>/ out.

receipts.py reads each attempt's receipt, receipt_members.py tells which members are receipts (and whose
an unreadable one is), dates.py each attempt's submission time and which attempt is graded, bulk.py unpacks
the zip (through grader/intake/safe_zip.py) and recognises each student's files, manifest.py is what the
import records.
"""

from grader.intake.blackboard.bulk import BulkDownloadError, import_bulk_download
from grader.intake.blackboard.dates import parse_submission_date
from grader.intake.blackboard.manifest import MANIFEST, ImportReport, Manifest, read_manifest
from grader.intake.blackboard.receipts import parse_receipt

__all__ = [
    "MANIFEST",
    "BulkDownloadError",
    "ImportReport",
    "Manifest",
    "import_bulk_download",
    "parse_receipt",
    "parse_submission_date",
    "read_manifest",
]
