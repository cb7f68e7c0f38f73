"""What runs inside the sandbox: the runner and the self-check's diagnostics.

Copied or mounted into every sandbox as plain files, and run there on their own: standard library,
numpy and torch only, never the rest of the grader. Host code never imports this package
(tests/test_sandbox_inside.py checks), since student code runs beside it and can rewrite what it reports.
"""
