"""Campaigns: many drills, over many services, as child executions of the drill state machine run by the campaign
state machine's Distributed Map (docs/campaigns.md).

``model`` holds the contracts between the campaign's states, ``schedule`` orders the drills into rounds of at most
one drill per service, ``stop_rule`` decides when the remaining drills are skipped, ``steps`` is what each state
does, ``report`` renders the campaign report and ``manifest`` seals and verifies the campaign's evidence.
"""
