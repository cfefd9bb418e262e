"""Every read view, by name: the generic projector, tables and HTTP routes are made from this.

`VIEWS` holds each view's resident version, the one the workers' event-log agent folds into
Faust tables; `VERSIONS` every version a view's module declares, the others built beside it
(see `agents.view_builder`).
"""

from types import ModuleType

from tables import customer_orders, orders, products, sales
from tables.view import View

VIEWS: dict[str, View] = {}
VERSIONS: dict[str, dict[int, View]] = {}


def register(module: ModuleType) -> None:
    """Serve the view a module declares: its `VIEW` (resident) and, if it has them, its
    `VERSIONS`."""
    view: View = module.VIEW
    VIEWS[view.name] = view
    VERSIONS[view.name] = {v.version: v for v in getattr(module, "VERSIONS", (view,))}


for _module in (orders, products, customer_orders, sales):
    register(_module)


def is_resident(view: View) -> bool:
    return VIEWS[view.name].version == view.version


def promoted(view: View) -> bool:
    """A resident version that is not its view's first: one built beside an earlier version,
    then made resident by a deploy. Its Faust tables use its built changelog, and its fold
    goes on from where its build left off (`agents.promotion`, and for a view fed through a
    repartition topic `agents.repartitioned_promotion`). Windowed views are never built, so
    they are not made resident this way."""
    return (is_resident(view) and view.window is None
            and view.version != min(VERSIONS[view.name]))


def buildable(view: View) -> bool:
    """A version built beside the resident one: not windowed (a built version keeps one row
    per key); one keyed other than by aggregate is built through a repartition topic."""
    return view.window is None and not is_resident(view)


def progress_name(view: View) -> str:
    """The name a version's fold reports its progress under (see `tables.progress`)."""
    return view.name if is_resident(view) else view.table_name
