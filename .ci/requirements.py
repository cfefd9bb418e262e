"""Print the dependencies from pyproject.toml (plus the named extras) as pip requirement lines.

The project runs from the repository and is never installed itself (see pyproject.toml),
so pip is handed its dependencies rather than the project.
"""

import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
extras = project.get("optional-dependencies", {})
print("\n".join(project["dependencies"] + [req for name in sys.argv[1:] for req in extras[name]]))
