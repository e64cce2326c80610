"""`alertsim conformance`: does a client handle alertsim's topics correctly?

    script  the alerts it plays (the domain's builders, status Test)
    judge   pure verdicts over the client's receipts, and the report model
    runner  the broker side: publish, read receipts, ask the client to rejoin
"""
