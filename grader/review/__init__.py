"""`grader review`: the TA's review of what the machine graded, in a local web app.

subjects.py says what a TA decides on (each written answer, each error or integrity flag) and hashes it; store.py
keeps every decision in results/review.sqlite (many writers at once); apply.py turns a student's decisions into
points, applied by the course policy like overrides.yaml; groups.py groups a question's answers by meaning;
learn.py rescores undecided answers from the decided ones (and seeds.py from an earlier class's); queue.py orders
what waits by how likely the machine is wrong and says which answers the decisions rescored (kept beside the
decisions, applied like them); vector_file.py keeps the answers' sentence vectors beside the results; session.py
holds one review's state and app.py serves it (Flask, on 127.0.0.1 behind a token).
"""
