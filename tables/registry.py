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
    repartition topic `agents.repartitioned_promotion`). A windowed view is not made resident
    this way: its Faust windowed table keeps rows under other keys than its built version's
    (`tables.windows`), so it starts empty (docs/evolution.md, Limits)."""
    return (is_resident(view) and view.window is None
            and view.version != min(VERSIONS[view.name]))


def progress_name(view: View) -> str:
    """The name a version's fold reports its progress under (see `tables.progress`)."""
    return view.name if is_resident(view) else view.table_name
