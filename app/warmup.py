"""``panel serve --setup`` hook: compile the core once per process before any session."""

from app.compiled import warm_up

warm_up()
