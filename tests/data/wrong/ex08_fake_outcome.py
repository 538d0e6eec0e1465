# exercise: ex08_race
# mistake: a constant: records "ok" for every key without running either step
# expect: no worker ran step_a
def run_pair(lab, key):
    lab.redis.rpush(f"lab.{lab.name}.race.outcomes", f"{key}:ok")
