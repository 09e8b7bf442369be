#!/usr/bin/env bash
# Checks haproxy/docker-proxy.cfg against the real Docker daemon, with the host's haproxy
# (Debian's package, 2.6 as in the stack's image) listening on 127.0.0.1:<port>:
#   - the worker's calls pass through to Docker (200, or Docker's own JSON 404);
#   - everything else, and every create body that would be root on the host, gets the
#     proxy's 403.
# It never creates or starts a container: every create names an image that does not exist
# (Docker answers 404 "No such image" to those that pass), start/stop/rename/delete/connect
# name a container that does not exist, and all bodies carry a label checked at the end.
#
# Usage: haproxy/docker-proxy-check.sh [port]     (default: the first free one from 23750)
set -euo pipefail
cd "$(dirname "$0")"
project_dir=$(cd .. && pwd)

if ! command -v haproxy >/dev/null; then
  echo "installing Debian's haproxy package"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
fi
version=$(haproxy -v)
version=${version%%$'\n'*}
echo "using: $version"
[[ $version == *" version 2.6."* ]] || echo "warning: not HAProxy 2.6; the stack's image runs 2.6" >&2

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ $# -ge 1 ]; then
  port=$1
  port_free "$port" || { echo "port $port is in use" >&2; exit 2; }
else
  port=23750
  while ! port_free "$port"; do port=$((port + 1)); done
fi

work=$(mktemp -d /tmp/docker-proxy-check.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

no_image=deployctl-proxy-check-no-such-image:none
no_container=deployctl-proxy-check-no-such-container-$$
label=deployctl.proxy-check
if docker image inspect "$no_image" >/dev/null 2>&1; then
  echo "image $no_image exists: refusing to run (a passing create could then create)" >&2
  exit 2
fi
if docker container inspect "$no_container" >/dev/null 2>&1; then
  echo "container $no_container exists: refusing to run" >&2
  exit 2
fi

# The real cfg, unchanged: only its environment differs from the compose service's.
export DOCKER_PROXY_BIND=127.0.0.1:$port
export DOCKER_PROXY_PROJECT_DIR=$project_dir
haproxy -c -f docker-proxy.cfg >"$work/check.txt" 2>&1 || { cat "$work/check.txt"; exit 1; }
haproxy -db -f docker-proxy.cfg >"$work/haproxy.log" 2>&1 &
pid=$!
for _ in $(seq 50); do port_free "$port" || break; sleep 0.1; done
port_free "$port" && { echo "haproxy did not start:"; cat "$work/haproxy.log"; exit 1; }
base=http://127.0.0.1:$port
echo "proxy on $base (pid $pid), project dir $project_dir"

passed=0 failed=0
# check NAME EXPECT METHOD PATH [BODY|@FILE|-] [curl args...]
#   EXPECT: 200 | docker404 | docker<code> (Docker's own JSON error) | refused[:reason part]
#           | blocked (refused, or HAProxy's own 400) | noanswer
check() {
  local name=$1 expect=$2 method=$3 path=$4 body=${5:--}
  shift 5 2>/dev/null || shift $#
  local args=(-sS --path-as-is --max-time 20 -o "$work/out" -w '%{http_code}' -X "$method")
  if [ "$body" != - ]; then
    if [[ $body == @* ]]; then args+=(--data-binary "$body")
    else printf '%s' "$body" >"$work/body" && args+=(--data-binary "@$work/body"); fi
    args+=(-H 'Content-Type: application/json')
  fi
  local code ok=0 got
  : >"$work/out"
  code=$(curl "${args[@]}" "$@" "$base$path" 2>"$work/err") || code=000
  got=$(head -c 200 "$work/out" | tr -d '\n')
  case $expect in
    200) [ "$code" = 200 ] && ok=1 ;;
    docker[0-9]*) [ "$code" = "${expect#docker}" ] && grep -q '"message"' "$work/out" && ok=1 ;;
    refused*)
      [ "$code" = 403 ] && grep -q '^docker-proxy refused' "$work/out" && ok=1
      if [ "$ok" = 1 ] && [[ $expect == refused:* ]]; then
        sed -n 1p "$work/out" | grep -F "${expect#refused:}" >/dev/null || ok=0
      fi ;;
    blocked)
      { [ "$code" = 403 ] && grep -q '^docker-proxy refused' "$work/out"; } && ok=1
      { [ "$code" = 400 ] && grep -q '<h1>400 Bad request</h1>' "$work/out"; } && ok=1 ;;
    noanswer) [ "$code" = 000 ] && ok=1 ;;
  esac
  if [ "$ok" = 1 ]; then
    passed=$((passed + 1)); printf 'PASS  %-58s %s %s\n' "$name" "$code" "${got:0:110}"
  else
    failed=$((failed + 1)); printf 'FAIL  %-58s want %s, got %s %s %s\n' "$name" "$expect" "$code" "$got" "$(head -c 200 "$work/err")"
  fi
}

# A create body: Image that does not exist, the check's label, the given HostConfig.
create() { printf '{"Image":"%s","Labels":{"%s":"1"},"HostConfig":%s}' "$no_image" "$label" "$1"; }
pad() { head -c "$1" /dev/zero | tr '\0' "${2:-a}"; }
v=/v1.41
C="$v/containers/create?name=deployctl-proxy-check-$$"

echo "== allowed calls pass through"
check "GET /_ping" 200 GET /_ping
check "HEAD /_ping" 200 HEAD /_ping - -I
check "GET /version" 200 GET /version
check "GET /v1.41/version" 200 GET $v/version
# A newer prefix passes; this daemon (API 1.41) answers it itself.
check "GET /v1.53/version (bollard's default prefix)" docker400 GET /v1.53/version
check "GET /v1.41/containers/json" 200 GET "$v/containers/json?all=1&filters=%7B%22label%22%3A%5B%22$label%22%5D%7D"
check "GET /containers/json (no prefix)" 200 GET /containers/json
# (Whole lists, then the first: no pipe closed early, which pipefail would count as a failure.)
images=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep -v '<none>' || true)
image=$(grep / <<<"$images" | sed -n 1p || true)
[ -n "$image" ] || image=$(sed -n 1p <<<"$images")
if [ -n "$image" ]; then
  check "GET /v1.41/images/$image/json" 200 GET "$v/images/$image/json"
fi
check "GET /v1.41/images/$no_image/json" docker404 GET "$v/images/$no_image/json"
check "GET /v1.41/images/library/$no_image/json" docker404 GET "$v/images/library/$no_image/json"
check "GET /v1.41/containers/<none>/json" docker404 GET "$v/containers/$no_container/json"
check "GET /v1.41/containers/<none>/logs" docker404 GET "$v/containers/$no_container/logs?stdout=1&stderr=1&tail=50"
check "GET /v1.41/containers/<none>/archive (migrations)" docker404 GET "$v/containers/$no_container/archive?path=%2Fapp%2Fprisma%2Fmigrations"
check "GET /v1.41/containers/<none>/archive (/migrations)" docker404 GET "$v/containers/$no_container/archive?path=/migrations"
check "POST /v1.41/containers/<none>/start" docker404 POST "$v/containers/$no_container/start"
check "POST /v1.41/containers/<none>/stop?t=30" docker404 POST "$v/containers/$no_container/stop?t=30"
check "POST /v1.41/containers/<none>/rename" docker404 POST "$v/containers/$no_container/rename?name=$no_container-x"
check "DELETE /v1.41/containers/<none>?force=1" docker404 DELETE "$v/containers/$no_container?force=1"
check "POST /v1.41/networks/<none>/connect" docker404 POST "$v/networks/deployctl-proxy-check-no-such-network/connect" "{\"Container\":\"$no_container\",\"EndpointConfig\":{\"Aliases\":[\"x\"]}}"

echo "== harmless creates pass through (Docker: No such image)"
check "create, minimal body" docker404 POST "$C" "$(create '{}')"
check "create, no prefix" docker404 POST "/containers/create" "$(create '{}')"
# What the worker sends: an ordinary compose container's inspected HostConfig, re-serialized.
worker_like='{"Hostname":"","Env":["APP=ecomweb","PATH=/usr/local/bin:/usr/bin:/bin","WIN=C:\\users\\u","Q=say \"hi\""],"Cmd":["worker"],"Healthcheck":{"Test":["CMD","/ecomweb","healthcheck"],"Interval":1000000000},"Image":"'$no_image'","Labels":{"'$label'":"1","com.docker.compose.project":"deployctl","com.docker.compose.project.working_dir":"'$project_dir'","com.docker.compose.service":"ecomweb_worker"},"StopTimeout":30,"HostConfig":{"Binds":["'$project_dir'/run/haproxy:/var/run/haproxy:rw","'$project_dir'/state:/state:rw","anonymous_volume:/data"],"ContainerIDFile":"","LogConfig":{"Type":"json-file","Config":{}},"NetworkMode":"deployctl_default","PortBindings":{},"RestartPolicy":{"Name":"unless-stopped","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":[],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"host","Dns":null,"DnsOptions":null,"DnsSearch":null,"ExtraHosts":null,"GroupAdd":null,"IpcMode":"private","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":67108864,"Runtime":"runc","Isolation":"","CpuShares":0,"Memory":536870912,"NanoCpus":500000000,"CgroupParent":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MaskedPaths":["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi","/sys/firmware"],"ReadonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]},"NetworkingConfig":{"EndpointsConfig":{"deployctl_default":{"Aliases":["ecomweb_worker"]}}}}'
check "create, worker-like body (state, run/haproxy, a volume)" docker404 POST "$C" "$worker_like"
check "create, worker-like body pretty-printed" docker404 POST "$C" "$(printf '%s' "$worker_like" | sed 's/,"/,\n    "/g; s/":/" :  /g; s/{/{ /g')"
check "create, SecurityOpt no-new-privileges" docker404 POST "$C" "$(create '{"SecurityOpt":["no-new-privileges"]}')"
check "create, Privileged false, CapAdd [] , Devices [ ]" docker404 POST "$C" "$(create '{"Privileged": false, "CapAdd": [], "Devices": [ ]}')"
check "create, Privileged false behind 2 x 15 KB of whitespace" docker404 POST "$C" "$(create "{\"Privileged\"$(pad 15000 ' '):$(pad 15000 ' ')false}")"
check "create, Expect: 100-continue" docker404 POST "$C" "$(create '{}')" -H 'Expect: 100-continue'

echo "== other endpoints are refused"
check "POST /v1.41/containers/x/exec" refused:method POST "$v/containers/x/exec" '{"Cmd":["sh"]}'
check "POST /v1.41/exec/x/start" refused:method POST "$v/exec/x/start" '{}'
check "POST /v1.41/images/create?fromImage=alpine (pull)" refused:method POST "$v/images/create?fromImage=alpine&tag=latest"
check "POST /v1.41/build" refused:method POST "$v/build"
check "GET /v1.41/volumes" refused:method GET "$v/volumes"
check "POST /v1.41/volumes/create" refused:method POST "$v/volumes/create" '{}'
check "POST /v1.41/networks/create" refused:method POST "$v/networks/create" '{"Name":"x"}'
check "GET /v1.41/networks" refused:method GET "$v/networks"
check "POST /v1.41/networks/x/disconnect" refused:method POST "$v/networks/x/disconnect" '{"Container":"x"}'
check "POST /v1.41/networks/host/connect" refused:"host network" POST "$v/networks/host/connect" '{"Container":"x"}'
check "POST /v1.41/networks/HOST/connect" refused:"host network" POST "$v/networks/HOST/connect" '{"Container":"x"}'
check "connect with a chunked body" refused:chunked POST "$v/networks/x/connect" '{"Container":"x"}' -H 'Transfer-Encoding: chunked'
check "POST /v1.41/containers/x/attach" refused:method POST "$v/containers/x/attach?stream=1"
check "POST /v1.41/containers/x/kill" refused:method POST "$v/containers/x/kill"
check "POST /v1.41/containers/x/update" refused:method POST "$v/containers/x/update" '{}'
check "POST /v1.41/containers/x/pause" refused:method POST "$v/containers/x/pause"
check "POST /v1.41/containers/x/restart" refused:method POST "$v/containers/x/restart"
check "POST /v1.41/containers/x/wait" refused:method POST "$v/containers/x/wait"
check "GET /v1.41/containers/x/export" refused:method GET "$v/containers/x/export"
check "GET /v1.41/containers/x/archive (cp out)" refused:method GET "$v/containers/x/archive?path=/"
check "GET archive of /etc/../migrations" refused:method GET "$v/containers/x/archive?path=/etc/../migrations"
check "GET archive of %2Fetc%2F..%2Fmigrations" refused:method GET "$v/containers/x/archive?path=%2Fetc%2F..%2Fmigrations"
check "GET archive of /app/prisma/migrations/x" refused:method GET "$v/containers/x/archive?path=/app/prisma/migrations/x"
check "GET archive with a second path" refused:method GET "$v/containers/x/archive?path=/migrations&path=/etc"
check "PUT /v1.41/containers/x/archive (cp in)" refused:method PUT "$v/containers/x/archive?path=/" 'x'
check "GET /v1.41/containers/x/top" refused:method GET "$v/containers/x/top"
check "POST /v1.41/commit" refused:method POST "$v/commit?container=x"
check "POST /v1.41/containers/prune" refused:method POST "$v/containers/prune"
check "DELETE /v1.41/images/x" refused:method DELETE "$v/images/x"
check "POST /v1.41/images/x/push" refused:method POST "$v/images/x/push"
check "GET /v1.41/images/json" refused:method GET "$v/images/json"
check "GET /v1.41/info" refused:method GET "$v/info"
check "GET /v1.41/events" refused:method GET "$v/events"
check "GET /v1.41/system/df" refused:method GET "$v/system/df"
check "POST /v1.41/swarm/init" refused:method POST "$v/swarm/init" '{}'
check "GET /v1.41/plugins" refused:method GET "$v/plugins"
check "POST /v1.41/plugins/pull" refused:method POST "$v/plugins/pull?remote=x"
check "POST /v1.41/session" refused:method POST "$v/session"
check "POST /v1.41/auth" refused:method POST "$v/auth" '{}'
check "GET /v1.41/secrets" refused:method GET "$v/secrets"
check "old API prefix: POST /v1.23/containers/x/start" refused:method POST "/v1.23/containers/$no_container/start"
check "start with a HostConfig body" refused:"request body" POST "$v/containers/$no_container/start" '{"Privileged":true}'
check "DELETE /v1.41/containers/x/json" refused:method DELETE "$v/containers/x/json"

echo "== path and method tricks are refused"
check "GET /v1.41/containers/json/../../exec" refused GET "$v/containers/json/../../exec"
check "POST /v1.41/containers/x/start/../exec" refused POST "$v/containers/x/start/../exec"
check "GET /v1.41/images/../volumes/json (..)" refused GET "$v/images/../volumes/json"
check "GET /v1.41/images/a/../../volumes/x/json (..)" refused:"non-canonical" GET "$v/images/a/../../volumes/x/json"
check "GET /v1.41/images/a/./x/json (.)" refused:"non-canonical" GET "$v/images/a/./x/json"
check "GET /v1.41/images/a/..(end)" refused GET "$v/images/a/.."
check "GET /v1.41/containers/%2e%2e/%2e%2e/volumes" refused GET "$v/containers/%2e%2e/%2e%2e/volumes"
check "GET /v1.41/images/a%2F..%2F..%2Fvolumes/json" refused GET "$v/images/a%2F..%2F..%2Fvolumes/json"
check "GET /v1.41/images/%2e%2e/json" refused GET "$v/images/%2e%2e/json"
check "POST /v1.41/containers/%63reate (encoded)" refused POST "$v/containers/%63reate" "$(create '{"Privileged":true}')"
check "GET //v1.41/volumes" refused GET "//v1.41/volumes"
check "POST /v1.41//containers/create (//)" refused POST "$v//containers/create" "$(create '{"Privileged":true}')"
check "GET /v1.41/images/a//x/json (//)" refused:"non-canonical" GET "$v/images/a//x/json"
check "GET /v1.41/containers\\json (backslash)" refused GET "$v/containers\\json"
check "lower-case method: get /v1.41/containers/json" refused:method get "$v/containers/json"
check "lower-case method: post create" refused:method post "$C" "$(create '{"Privileged":true}')"
check "absolute-form GET http://<proxy>/v1.41/volumes" refused:method GET / - --request-target "$base$v/volumes"
check "absolute-form, another authority" blocked GET / - --request-target "http://x$v/containers/json"
check "OPTIONS *" refused:method OPTIONS / - --request-target '*'
check "Upgrade: tcp on an allowed path" refused:upgrade POST "$v/containers/$no_container/start" - -H 'Upgrade: tcp' -H 'Connection: Upgrade'
check "HTTP/2 prior knowledge (h2c) is not spoken" noanswer GET "$v/volumes" - --http2-prior-knowledge

echo "== create bodies that would be root on the host are refused"
check "Privileged true" refused:Privileged POST "$C" "$(create '{"Privileged":true}')"
check "Privileged true, whitespace-padded" refused:Privileged POST "$C" "$(printf '{ "Image" : "%s" ,\n "HostConfig" :\t{\n  "Privileged"   :\r\n   true }\n}' "$no_image")"
check "privileged true, lower-case key" refused:Privileged POST "$C" "$(create '{"privileged":true}')"
check "PRIVILEGED true, upper-case key" refused:Privileged POST "$C" "$(create '{"PRIVILEGED":true}')"
check "Privileged true at top level (old wrapper)" refused:Privileged POST "$C" "{\"Image\":\"$no_image\",\"Privileged\":true}"
check "Privileged true behind 2 x 15 KB of whitespace" refused:Privileged POST "$C" "$(create "{\"Privileged\"$(pad 15000 ' '):$(pad 15000 ' ')true}")"
check "Privileged false then true (duplicate key)" refused:Privileged POST "$C" "$(create '{"Privileged":false,"Privileged":true}')"
check "Privileged key spelled with \\u escape" refused:"JSON escapes" POST "$C" "$(create '{"\u0050rivileged":true}')"
check "Binds docker.sock" refused:"Docker socket" POST "$C" "$(create '{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}')"
check "Binds /run/docker.sock, padded" refused:"Docker socket" POST "$C" "$(create '{"Binds" : [ "vol:/data" ,  "/run/docker.sock:/s:ro" ]}')"
check "Binds / (root)" refused:"bind of /" POST "$C" "$(create '{"Binds":["/:/host"]}')"
check "Binds //" refused:"bind of /" POST "$C" "$(create '{"Binds":["//:/host:rw"]}')"
check "Binds /." refused:"bind of /" POST "$C" "$(create '{"Binds":["/.:/host"]}')"
check "Binds \\/ escaped slash" refused:"JSON escapes" POST "$C" "$(create '{"Binds":["\/:\/host"]}')"
check "Binds /var/run (the socket's directory)" refused:"host path" POST "$C" "$(create '{"Binds":["/var/run:/h"]}')"
check "Binds /etc" refused:"host path" POST "$C" "$(create '{"Binds":["/etc:/h"]}')"
check "Binds the project directory itself" refused:"host path" POST "$C" "$(create "{\"Binds\":[\"$project_dir:/project\"]}")"
check "Binds a path under state (a planted symlink?)" refused:"host path" POST "$C" "$(create "{\"Binds\":[\"$project_dir/state/x:/h\"]}")"
check "Binds <project>/statex" refused:"host path" POST "$C" "$(create "{\"Binds\":[\"$project_dir/statex:/h\"]}")"
check "Binds <project>/run (the parent of run/haproxy)" refused:"host path" POST "$C" "$(create "{\"Binds\":[\"$project_dir/run:/h\"]}")"
check "Binds <project>/state/.. (non-canonical)" refused:"host path" POST "$C" "$(create "{\"Binds\":[\"$project_dir/state/..:/h\"]}")"
check "Binds, ] inside an earlier element" refused:"bind of /" POST "$C" "$(create '{"Binds":["vol]x:/a","/:/host"]}')"
check "Binds, 30 KB element before /" refused:"bind of /" POST "$C" "$(create "{\"Binds\":[\"v$(pad 30000):/a\",\"/:/host\"]}")"
check "Binds, 30 KB absolute path" refused:"host path" POST "$C" "$(create "{\"Binds\":[\"/$(pad 30000):/h\"]}")"
check "Binds, escaped quote hiding the colon" refused:"host path" POST "$C" "$(create "{\"Binds\":[\"$project_dir/state\\\"b:/h\"]}")"
check "Mounts bind of /" refused:"bind of /" POST "$C" "$(create '{"Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]}')"
check "Mounts bind of docker.sock" refused:"Docker socket" POST "$C" "$(create '{"Mounts":[{"Target":"/s","Source":"/var/run/docker.sock","Type":"bind"}]}')"
check "Mounts bind of /etc" refused:"Mounts" POST "$C" "$(create '{"Mounts":[{"Type" : "bind","Source":"/etc","Target":"/h"}]}')"
check "Mounts volume with driver bind options (device=/)" refused:"Mounts" POST "$C" "$(create '{"Mounts":[{"Type":"volume","Source":"pc","Target":"/h","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]}')"
check "PidMode host" refused:PidMode POST "$C" "$(create '{"PidMode":"host"}')"
check "PidMode host, padded" refused:PidMode POST "$C" "$(create '{"PidMode" :  "host"}')"
check "PidMode container:<proxy>" refused:PidMode POST "$C" "$(create '{"PidMode":"container:deployctl_docker_proxy_1"}')"
check "NetworkMode host" refused:NetworkMode POST "$C" "$(create '{"NetworkMode":"host"}')"
check "NetworkMode host, padded" refused:NetworkMode POST "$C" "$(create '{ "NetworkMode"	: "host" }')"
check "NetworkingConfig endpoint host" refused:NetworkMode POST "$C" "{\"Image\":\"$no_image\",\"NetworkingConfig\":{\"EndpointsConfig\":{\"host\":{}}}}"
check "IpcMode host" refused:IpcMode POST "$C" "$(create '{"IpcMode":"host"}')"
check "UsernsMode host" refused:UsernsMode POST "$C" "$(create '{"UsernsMode":"host"}')"
check "UTSMode host" refused:UTSMode POST "$C" "$(create '{"UTSMode":"host"}')"
check "CapAdd SYS_ADMIN" refused:CapAdd POST "$C" "$(create '{"CapAdd":["SYS_ADMIN"]}')"
check "CapAdd ALL, padded" refused:CapAdd POST "$C" "$(create '{"CapAdd" : [ "ALL" ]}')"
check "Capabilities (API 1.40 full set)" refused:CapAdd POST "$C" "$(create '{"Capabilities":["CAP_SYS_ADMIN"]}')"
check "Devices /dev/sda" refused:Devices POST "$C" "$(create '{"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]}')"
check "DeviceCgroupRules b *:* rwm" refused:Devices POST "$C" "$(create '{"DeviceCgroupRules":["b *:* rwm"]}')"
check "DeviceRequests" refused:Devices POST "$C" "$(create '{"DeviceRequests":[{"Count":-1}]}')"
check "SecurityOpt seccomp=unconfined" refused:SecurityOpt POST "$C" "$(create '{"SecurityOpt":["seccomp=unconfined"]}')"
check "SecurityOpt apparmor:unconfined after no-new-privileges" refused:SecurityOpt POST "$C" "$(create '{"SecurityOpt":["no-new-privileges", "apparmor:unconfined"]}')"
check "SecurityOpt custom seccomp profile" refused:SecurityOpt POST "$C" "$(create '{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]}')"
check "SecurityOpt label=disable" refused:SecurityOpt POST "$C" "$(create '{"SecurityOpt":["label=disable"]}')"
check "SecurityOpt, 1500 no-new-privileges then unconfined" refused:SecurityOpt POST "$C" "$(create "{\"SecurityOpt\":[$(for _ in $(seq 1500); do printf '"no-new-privileges",'; done)\"seccomp=unconfined\"]}")"
check "ReadonlyPaths [] (/proc/sys writable)" refused:ReadonlyPaths POST "$C" "$(create '{"ReadonlyPaths":[]}')"
check "ReadonlyPaths without /proc/sys" refused:ReadonlyPaths POST "$C" "$(create '{"ReadonlyPaths":["/proc/bus","/proc/sysrq-trigger"]}')"
check "ReadonlyPaths, 10700 elements, no /proc/sys" refused:ReadonlyPaths POST "$C" "$(create "{\"ReadonlyPaths\":[$(for _ in $(seq 10700); do printf '"",'; done)\"/proc/sysrq-trigger\"]}")"
check "MaskedPaths []" refused:MaskedPaths POST "$C" "$(create '{"MaskedPaths":[],"ReadonlyPaths":["/proc/sys","/proc/sysrq-trigger"]}')"
check "VolumesFrom the proxy" refused:VolumesFrom POST "$C" "$(create '{"VolumesFrom":["deployctl_docker_proxy_1"]}')"
check "VolumeDriver" refused:VolumeDriver POST "$C" "$(create '{"VolumeDriver":"evil"}')"
check "long-s U+017F spelling of SecurityOpt" refused:"case-folding" POST "$C" "$(create '{"ſecurityOpt":["seccomp=unconfined"]}')"
check "Kelvin sign U+212A in a key" refused:"case-folding" POST "$C" "$(create "{\"$(printf '\xe2\x84\xaa')ey\":1}")"
check "\\u escape after 30000 backslashes" refused:"JSON escapes" POST "$C" "{\"Env\":[\"$(pad 30000 '\\')\"],$(create '{"\u0050rivileged":true}' | cut -c2-)"

echo "== bodies the proxy cannot fully read are refused"
check "create body over 32 KiB" refused:"over 32 KiB" POST "$C" "{\"Env\":[\"X=$(pad 33000)\"],$(create '{"Privileged":true}' | cut -c2-)"
check "create, chunked" refused:chunked POST "$C" "$(create '{"Privileged":true}')" -H 'Transfer-Encoding: chunked'
check "create, 40 KB of headers pushing the body out" refused:"body not fully buffered" POST "$C" "{\"Env\":[\"X=$(pad 30000)\"],$(create '{"Privileged":true}' | cut -c2-)" -H "X-Pad: $(pad 40000)"

# Nothing was created: no container carries the check's label.
left=$(docker ps -aq --filter "label=$label")
if [ -n "$left" ]; then
  failed=$((failed + 1)); echo "FAIL  containers were created: $left"
else
  passed=$((passed + 1)); echo "PASS  no container carries the label $label"
fi
# Refusals reach the log with method, path and reason.
if grep -q 'docker-proxy status=403 POST /v1.41/containers/create?name=[^ ]* refused="Privileged"' "$work/haproxy.log"; then
  passed=$((passed + 1)); echo "PASS  refusals are logged (method, path, reason)"
else
  failed=$((failed + 1)); echo "FAIL  no refusal log line"; tail -n 5 "$work/haproxy.log"
fi
echo "== proxy log (last lines)"
tail -n 4 "$work/haproxy.log"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
