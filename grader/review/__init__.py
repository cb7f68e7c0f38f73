"""The TA's review of Exercise 2 answers: a queue of doubtful answers, decisions stored, the machine learning from them."""
