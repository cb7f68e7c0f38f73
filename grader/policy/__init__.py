"""Course policy on top of the machine's figures: late penalties, attempt choice, TA overrides."""
