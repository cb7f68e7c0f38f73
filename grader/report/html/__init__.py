"""HTML reports: a page per student (feedback to hand back) and the class dashboard for the TA."""
