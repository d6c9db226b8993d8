#!/usr/bin/env bash
# Checks the deployment files with the tools their formats' maintainers publish, from the registries
# (scripts/setup.sh installs them in .local/venv-test):
#   - the Dockerfile with hadolint (rules in deploy/hadolint.yaml; any finding fails);
#   - every Kubernetes manifest with kubernetes-validate --strict (the API's own OpenAPI schemas, so an
#     unknown or misspelled field fails);
#   - the Compose file against the Compose Specification's JSON schema, plus what a schema cannot
#     see: every file it mounts exists, the engine nodes have distinct node ids, Prometheus
#     scrapes each of them, and their API keys come from the operator (no default key shipped).
# usage: deploy/check.sh [DIR]   (DIR: a deploy folder, default the one beside this script; its
#        relative mounts are resolved from it as Compose would)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DIR="$(cd "${1:-$HERE}" && pwd)"
VENV="${PANOPTES_TEST_VENV:-$ROOT/.local/venv-test}"
for tool in hadolint kubernetes-validate python; do
  [ -x "$VENV/bin/$tool" ] || { echo "deploy/check.sh: $VENV/bin/$tool is missing: run scripts/setup.sh" >&2; exit 2; }
done
[ -f "$VENV/share/compose_spec.json" ] || { echo "deploy/check.sh: the Compose schema is missing: run scripts/setup.sh" >&2; exit 2; }

echo "== hadolint $DIR/Dockerfile"
"$VENV/bin/hadolint" --no-color --config "$HERE/hadolint.yaml" "$DIR/Dockerfile"

echo "== kubernetes-validate --strict $DIR/k8s"
"$VENV/bin/kubernetes-validate" --strict --quiet "$DIR"/k8s/*.yaml

echo "== compose $DIR/compose.yaml"
"$VENV/bin/python" - "$DIR" "$VENV/share/compose_spec.json" <<'PY'
import json, os, sys
import jsonschema, yaml

folder, schema_file = sys.argv[1:]
path = os.path.join(folder, "compose.yaml")
with open(path) as f:
    doc = yaml.safe_load(f)
with open(schema_file) as f:
    schema = json.load(f)
problems = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in jsonschema.Draft201909Validator(schema).iter_errors(doc)]
services = doc.get("services") or {}
for name, svc in services.items():
    for vol in svc.get("volumes") or []:
        source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
        if source.startswith((".", "/")) and not os.path.exists(os.path.join(folder, source)):
            problems.append(f"services/{name}/volumes: {source} does not exist")
    if isinstance(svc.get("build"), dict):
        b = svc["build"]
        dockerfile = os.path.join(folder, b.get("context", "."), b.get("dockerfile", "Dockerfile"))
        if not os.path.isfile(dockerfile):
            problems.append(f"services/{name}/build: {dockerfile} does not exist")
engines = {n: s for n, s in services.items() if s.get("image", "").startswith("panoptes")}
ids = [str((s.get("environment") or {}).get("PANOPTES_STREAMING__NODE_ID", "")) for s in engines.values()]
if len(engines) < 2:
    problems.append("fewer than two engine services")
if len(set(ids)) != len(ids) or "" in ids:
    problems.append(f"engine services need distinct PANOPTES_STREAMING__NODE_ID values, have {ids}")
# The engines' keys: only from the operator's environment, required (${VAR:?message}), never a literal
# or a default (${VAR:-key}) that every copy of this file would share.
import re
for name, svc in engines.items():
    keys = str((svc.get("environment") or {}).get("PANOPTES_API__KEYS", ""))
    values = re.findall(r'key(?:_sha256)?\s*=\s*"([^"]*)"', keys)
    if not values:
        problems.append(f"services/{name}: no admin key in PANOPTES_API__KEYS (the engine would refuse to serve on 0.0.0.0)")
    for v in values:
        if not re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", v):
            problems.append(f"services/{name}: the admin key must come from the operator, as ${{PANOPTES_ADMIN_KEY:?message}} "
                            f"(no literal key, no default), not {v!r}")
prom = os.path.join(folder, "prometheus.yml")
if os.path.exists(prom):
    with open(prom) as f:
        targets = [t for job in yaml.safe_load(f).get("scrape_configs", [])
                   for sc in job.get("static_configs", []) for t in sc.get("targets", [])]
    for name in engines:
        if not any(t.split(":")[0] == name for t in targets):
            problems.append(f"prometheus.yml does not scrape {name}")
for p in problems:
    print(f"{path}: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "deploy: all checks passed"
