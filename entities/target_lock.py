"""`target_lock`: one entity per target, held by at most one rollout at a time.

Entities process operations one at a time, so acquire is a race-free test-and-set
across any number of concurrent rollouts.
"""

import azure.durable_functions as df

bp = df.Blueprint()


@bp.entity_trigger(context_name="context", entity_name="target_lock")
def target_lock(context: df.DurableEntityContext) -> None:
    holder = context.get_state(lambda: None)
    operation = context.operation_name
    if operation == "acquire":
        who = context.get_input()
        granted = holder in (None, who)
        if granted:
            context.set_state(who)
        context.set_result(granted)
    elif operation == "release":
        who = context.get_input()
        released = holder == who
        if released:
            context.set_state(None)
        context.set_result(released)
    elif operation == "holder":
        context.set_result(holder)
    else:
        raise ValueError(f"target_lock has no operation '{operation}'")
