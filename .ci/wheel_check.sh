#!/usr/bin/env bash
# Build the wheel, install it into a brand-new virtualenv, and prove a host project can
# install the app from it: import, migrate (views included) and pass the system checks.
# Then a NEW host from `django-admin startproject` (auth.User, a business model with other
# field names), set up as the README says, answers every endpoint (.ci/new_host.py).
set -euo pipefail
PY=${1:-python3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PY" -m build --wheel --outdir "$work/dist" "$root" >/dev/null
wheel=$(ls "$work"/dist/*.whl)
echo "built $(basename "$wheel")"
listing=$(python3 -m zipfile -l "$wheel")
for wanted in xo_recommender/migrations/0002_source_views.py \
              xo_recommender/templates/xo_recommender/admin/preview.html \
              xo_recommender/templates/xo_recommender/admin/modelversion_change_list.html \
              xo_recommender/api/docs.py xo_recommender/charts.py; do
  grep -qF "$wanted" <<<"$listing" || { echo "the wheel lacks $wanted" >&2; exit 1; }
done
if grep -qF "example_project" <<<"$listing"; then
  echo "the wheel must not ship the example project" >&2; exit 1
fi

"$PY" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$wheel" dj-database-url
cp -r "$root/example_project" "$work/host"
rm -f "$work/host/demo.sqlite3"
cd "$work"
mv host example_project
DATABASE_URL="sqlite:///$work/wheel.sqlite3" "$work/venv/bin/python" - <<'PY'
import os
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "example_project.settings"
import xo_recommender
assert "site-packages" in xo_recommender.__file__, xo_recommender.__file__
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
call_command("check", fail_level="WARNING")
call_command("recommender_views")
print(f"xo_recommender {xo_recommender.__version__} installs from its wheel and migrates")
PY

"$work/venv/bin/python" "$root/.ci/new_host.py" "$work/newhost"
