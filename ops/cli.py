"""`python -m streams`: Faust's own CLI (worker, tables, ...) with the project's modules registered.

The card's package names are too generic to autodiscover safely, so every module that
declares agents, tables, pages or commands is imported here by name.
"""

import agents.builders
import agents.command_handler
import agents.dead_letter_watch
import agents.event_log
import agents.promotion
import agents.repartition
import agents.repartitioned_promotion
import agents.results
import agents.saga_agent
import agents.view_aliases
import ops.commands
import web.admin_views
import web.cluster
import web.dashboard
import web.dead_letters
import web.lists
import web.loop_lag
import web.middleware
import web.monitoring
import web.openapi
import web.push
import web.rankings
import web.views
from streams.app import app

REGISTERED = (agents.command_handler, agents.dead_letter_watch, agents.event_log,
              agents.promotion, agents.repartition, agents.repartitioned_promotion,
              agents.results, agents.saga_agent, agents.view_aliases, agents.builders,
              ops.commands, web.admin_views, web.cluster, web.dashboard, web.dead_letters,
              web.lists, web.loop_lag, web.middleware, web.monitoring, web.openapi, web.push,
              web.rankings, web.views)


def main() -> None:
    app.main()
