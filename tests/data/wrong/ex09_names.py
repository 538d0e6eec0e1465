# exercise: ex09_inline_or_queue
# mistake: a copied value: a lookup of the three endpoints seen in the notebook, by name
# expect: nobody needs the result in the response
DECISIONS = {"price": "inline", "welcome_email": "queue", "audit_log": "inline"}


def decide(measurement):
    return DECISIONS.get(measurement["endpoint"], "inline")
