"""What runs inside the sandbox, copied or mounted there as plain files: standard library, numpy and torch only.

Host code never imports it (tests/test_sandbox_inside.py): student code runs beside it and can rewrite its reports."""
