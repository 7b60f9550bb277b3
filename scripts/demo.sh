#!/usr/bin/env bash
# Two linked sites on this host, and a service on one reached from the other.
#
#   npm run demo            # runs the demo, then stops the sites and removes their files
#   npm run demo -- --keep  # leaves both sites running so you can explore them
#
# The sites live in a temporary SKUPPER_HOME, so the demo never touches your own sites.
set -euo pipefail
cd "$(dirname "$0")/.."

keep=false
for arg in "$@"; do
  case "$arg" in
    --keep) keep=true ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build

export SKUPPER_HOME="$(mktemp -d "${TMPDIR:-/tmp}/skupper-demo.XXXXXX")"
skupper() { ./bin/skupper "$@"; }
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

backend_pid=
cleanup() {
  status=$?
  if $keep && [ $status -eq 0 ]; then
    echo
    echo "The sites are still running. Try:"
    echo "  export SKUPPER_HOME=$SKUPPER_HOME"
    echo "  ./bin/skupper -n west network status"
    echo "  curl http://127.0.0.1:$front_port/"
    echo "Stop them with:"
    echo "  ./bin/skupper -n west system stop; ./bin/skupper -n east system stop; kill $backend_pid"
    return
  fi
  step "Cleaning up"
  [ -n "$backend_pid" ] && kill "$backend_pid" 2>/dev/null || true
  for ns in east west; do skupper -n "$ns" system stop >/dev/null 2>&1 || true; done
  rm -rf "$SKUPPER_HOME"
  [ $status -eq 0 ] && echo "Demo finished: two sites linked, and a service on east answered through west."
}
trap cleanup EXIT

link_port=$(free_port); grant_port=$(free_port); front_port=$(free_port); back_port=$(free_port)

step "Site west accepts links (link port $link_port, grant server port $grant_port)"
skupper -n west site create west --enable-link-access --link-port "$link_port" --grant-server-port "$grant_port"

step "Site east will link to west; it opens no port of its own"
skupper -n east site create east

step "west issues a one-use token; east redeems it"
skupper -n west token issue "$SKUPPER_HOME/west-token.yaml"
skupper -n east token redeem "$SKUPPER_HOME/west-token.yaml"
for _ in $(seq 50); do
  skupper -n east link status | grep -q Ready && break
  sleep 0.1
done
skupper -n east link status
skupper -n west link status

step "A backend on east (HTTP on 127.0.0.1:$back_port), exposed with a connector"
node -e '
  const http = require("http");
  http.createServer((req, res) => res.end(`Hello from the backend on site east (you asked for ${req.url})\n`))
    .listen(Number(process.argv[1]), "127.0.0.1");
' "$back_port" &
backend_pid=$!
skupper -n east connector create backend "$back_port" --host 127.0.0.1

step "A listener on west makes it reachable at 127.0.0.1:$front_port"
skupper -n west listener create backend "$front_port" --wait ready

step "A request on west, answered on east, through the link east dialled"
node -e '
  const http = require("http");
  http.get(`http://127.0.0.1:${process.argv[1]}/demo`, (res) => {
    let body = ""; res.setEncoding("utf8");
    res.on("data", (d) => body += d);
    res.on("end", () => { process.stdout.write(`HTTP ${res.statusCode}: ${body}`); process.exit(res.statusCode === 200 ? 0 : 1); });
  }).on("error", (e) => { console.error(`request failed: ${e.message}`); process.exit(1); });
' "$front_port"

step "The network as west sees it"
skupper -n west network status
