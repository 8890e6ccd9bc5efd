#!/usr/bin/env python3
"""share/k8s: the DaemonSet and the sidecar example parse, ask for no more than fimctl needs
(no privileged mode, all capabilities dropped but the listed ones, the node's / read-only, a
read-only root filesystem), and every fimctl command line in them uses commands and options
the binary has (fimctl completion list), with policies that 'fimctl config check' accepts.

Usage: k8s_test.py --fimctl PATH (--list | CASE)"""
import os
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import SOURCE, Ctx, Failure, Skip, run_main  # noqa: E402

try:
    import yaml
except ImportError:  # the python meson found has no PyYAML: Debian's python3 with python3-yaml has
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])
    yaml = None

K8S = os.path.join(SOURCE, "share", "k8s")
# What the features need (README, Kubernetes): fanotify filesystem marks, reading every file
# and open_by_handle_at, /proc/PID/root of other processes; SYS_CHROOT only where a container
# enters the node's mount namespace (watch --mount-ns).
ALLOWED_CAPS = {"SYS_ADMIN", "DAC_READ_SEARCH", "SYS_PTRACE", "SYS_CHROOT"}


def docs(name):
    if yaml is None:
        raise Skip("PyYAML is not installed (Debian: python3-yaml)")
    with open(os.path.join(K8S, name)) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def pod_spec(doc):
    return doc["spec"]["template"]["spec"] if doc["kind"] == "DaemonSet" else doc["spec"]


def containers(spec):
    return spec.get("initContainers", []) + spec["containers"]


def check_security(spec, where):
    if spec.get("hostNetwork"):
        raise Failure(f"{where}: hostNetwork")
    for c in containers(spec):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            raise Failure(f"{where}/{c['name']}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False or sc.get("readOnlyRootFilesystem") is not True:
            raise Failure(f"{where}/{c['name']}: privilege escalation allowed or root filesystem writable: {sc}")
        caps = sc.get("capabilities") or {}
        if caps.get("drop") != ["ALL"] or not set(caps.get("add", [])) <= ALLOWED_CAPS:
            raise Failure(f"{where}/{c['name']}: capabilities {caps}")
        if "SYS_CHROOT" in caps.get("add", []) and "--mount-ns" not in (c.get("command") or []):
            raise Failure(f"{where}/{c['name']}: SYS_CHROOT without watch --mount-ns, which is what needs it")
        if "limits" not in (c.get("resources") or {}) and c["name"] != "setup":
            raise Failure(f"{where}/{c['name']}: no resource limits")


def fimctl_lines(spec):
    """Every fimctl command line of the pod: exec arrays, and lines of sh -c scripts."""
    out = []
    for c in containers(spec):
        cmd = c.get("command", []) + c.get("args", [])
        if cmd and cmd[0] == "fimctl":
            out.append(cmd)
        elif cmd[:2] == ["/bin/sh", "-c"]:
            script = "\n".join(ln for ln in " ".join(cmd[2:]).splitlines() if not ln.strip().startswith("#"))
            for line in script.replace("||", "\n").replace("&&", "\n").replace(";", "\n").splitlines():
                words = shlex.split(line.strip().lstrip("[").split("]")[-1]) if "fimctl" in line else []
                if "fimctl" in words:
                    out.append(words[words.index("fimctl"):])
    return out


def check_empty_dirs(spec, where):
    """kubelet creates an emptyDir 0777, and fimctl refuses a baseline or a status socket in a
    directory others can write (fimctl(8), THREAT MODEL): each emptyDir a container mounts must
    be made 0755 by a script of the pod before fimctl uses it."""
    empty = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
    scripts = " ".join(" ".join(c.get("args", [])) for c in containers(spec)
                       if c.get("command", [])[:2] == ["/bin/sh", "-c"])
    for c in containers(spec):
        for m in c.get("volumeMounts", []):
            if m["name"] in empty and f"chmod 0755 {m['mountPath']}" not in scripts:
                raise Failure(f"{where}/{c['name']}: emptyDir {m['mountPath']} stays 0777 (no 'chmod 0755 {m['mountPath']}')")


def check_commands(ctx, lines):
    """Each line's command and options exist ("option<TAB>SCOPE<TAB>FLAGS<TAB>VALUE" rows: an
    empty VALUE is a flag without a value). Returns how many lines were checked."""
    listing = subprocess.run([ctx.fimctl, "completion", "list"], capture_output=True, text=True).stdout
    commands, options = set(), {}
    for row in listing.splitlines():
        kind, *rest = row.split("\t")
        if kind == "command":
            commands.add(rest[0])
        elif kind == "option":
            for flag in rest[1].split():
                options.setdefault(rest[0], {})[flag] = bool(rest[2]) if len(rest) > 2 else False
    for words in lines:
        cmd, i = None, 1
        while i < len(words):
            w = words[i]
            if w.startswith("-"):
                known = {**options.get("", {}), **options.get(cmd or "", {})}
                if w not in known:
                    raise Failure(f"{' '.join(words)}: unknown option {w} (of '{cmd or 'fimctl'}')")
                i += 2 if known[w] else 1
                continue
            if cmd is None:
                if w not in commands:
                    raise Failure(f"{' '.join(words)}: unknown command {w}")
                cmd = w
                if w == "key":  # key generate|sign
                    i += 1
            i += 1
        if cmd is None:
            raise Failure(f"{' '.join(words)}: no command")
    return len(lines)


def case_daemonset(ctx):
    ds = [d for d in docs("fimctl-daemonset.yaml") if d["kind"] == "DaemonSet"]
    if len(ds) != 1:
        raise Failure("one DaemonSet expected")
    spec = pod_spec(ds[0])
    if not spec.get("hostPID"):
        raise Failure("the DaemonSet needs hostPID to read containers' roots")
    check_security(spec, "DaemonSet")
    check_empty_dirs(spec, "DaemonSet")
    host = [c for c in spec["containers"] if c["name"] == "host"][0]
    if "--mount-ns" not in host["command"] or any(m["mountPath"] == "/host" for m in host["volumeMounts"]):
        raise Failure("the watcher must run in the node's mount namespace (node paths), without /host")
    vols = {v["name"]: v for v in spec["volumes"]}
    for c in containers(spec):
        for m in c.get("volumeMounts", []):
            hp = vols[m["name"]].get("hostPath")
            if hp and hp["path"] not in ("/var/lib/fimctl", "/etc/fimctl/keys") and not m.get("readOnly"):
                raise Failure(f"{c['name']}: host path {hp['path']} mounted writable")
            if hp and hp["path"] == "/etc/fimctl/keys" and c["name"] != "setup" and not m.get("readOnly"):
                raise Failure(f"{c['name']}: the key directory is writable outside the setup container")
    if check_commands(ctx, fimctl_lines(spec)) < 5:
        raise Failure("expected the key, init, watch, import and check command lines")


def case_sidecar(ctx):
    pods = [d for d in docs("fimctl-sidecar.yaml") if d["kind"] == "Pod"]
    spec = pod_spec(pods[0])
    if not spec.get("shareProcessNamespace"):
        raise Failure("the sidecar needs shareProcessNamespace")
    side = [c for c in spec["containers"] if c["name"] == "fimctl"]
    if not side:
        raise Failure("no fimctl container")
    check_security({"containers": side}, "sidecar")
    check_empty_dirs({"containers": side, "volumes": spec["volumes"]}, "sidecar")
    if check_commands(ctx, fimctl_lines({"containers": side})) < 3:
        raise Failure("expected the key, init and check command lines")


def case_policies(ctx):
    """Every policy in the manifests' ConfigMaps passes 'fimctl config check'."""
    n = 0
    for name in ("fimctl-daemonset.yaml", "fimctl-sidecar.yaml"):
        for d in docs(name):
            if d["kind"] != "ConfigMap":
                continue
            for key, text in d["data"].items():
                path = os.path.join(ctx.tmp, key)
                with open(path, "w") as f:
                    f.write(text)
                p = subprocess.run([ctx.fimctl, "-c", path, "config", "check"], capture_output=True, text=True)
                if p.returncode != 0:
                    raise Failure(f"{name} {key}: {p.stderr}")
                n += 1
    if n < 3:
        raise Failure(f"{n} policies found")


RENDER = os.path.join(SOURCE, "scripts", "k8s-render")


def render(ctx, values=None, edit=None):
    """scripts/k8s-render of the shipped values (edited by `edit`), as (exit code, docs, stderr)."""
    if values is None:
        with open(os.path.join(K8S, "values.yaml")) as f:
            values = yaml.safe_load(f) if yaml else None
    if yaml is None:
        raise Skip("PyYAML is not installed (Debian: python3-yaml)")
    if edit:
        edit(values)
    path = os.path.join(ctx.tmp, "values.yaml")
    with open(path, "w") as f:
        f.write(values if isinstance(values, str) else yaml.safe_dump(values))
    p = subprocess.run(["/usr/bin/python3", RENDER, path], capture_output=True, text=True)
    return p.returncode, [d for d in yaml.safe_load_all(p.stdout) if d] if p.returncode == 0 else [], p.stderr


def kind(ds, k):
    found = [d for d in ds if d["kind"] == k]
    if len(found) != 1:
        raise Failure(f"one {k} expected, {len(found)} rendered")
    return found[0]


def case_checked_in_manifests_are_the_rendering_of_the_values(ctx):
    """share/k8s/fimctl-daemonset.yaml is what scripts/k8s-render makes of share/k8s/values.yaml:
    an edit to one that the other does not have fails here."""
    if yaml is None:
        raise Skip("PyYAML is not installed (Debian: python3-yaml)")
    p = subprocess.run(["/usr/bin/python3", RENDER, os.path.join(K8S, "values.yaml")], capture_output=True, text=True)
    with open(os.path.join(K8S, "fimctl-daemonset.yaml")) as f:
        if p.returncode != 0 or p.stdout != f.read():
            raise Failure("share/k8s/fimctl-daemonset.yaml is not the rendering of values.yaml: run "
                          "scripts/k8s-render -o share/k8s/fimctl-daemonset.yaml" + p.stderr)


def case_network_policy_admits_only_prometheus_to_the_metrics_port(ctx):
    rc, ds, err = render(ctx)
    np = kind(ds, "NetworkPolicy")["spec"]
    if np["policyTypes"] != ["Ingress"] or np["podSelector"]["matchLabels"] != {"app.kubernetes.io/name": "fimctl"}:
        raise Failure(f"NetworkPolicy: {np}")
    if len(np["ingress"]) != 1 or np["ingress"][0]["ports"] != [{"protocol": "TCP", "port": 9464}]:
        raise Failure(f"more than the metrics port admitted: {np['ingress']}")
    src = np["ingress"][0]["from"]
    if len(src) != 1 or set(src[0]) != {"namespaceSelector", "podSelector"}:
        raise Failure(f"admitted from more than Prometheus's pods: {src}")


def case_service_monitor_scrapes_the_service_port_by_name(ctx):
    rc, ds, err = render(ctx)
    svc, sm = kind(ds, "Service"), kind(ds, "ServiceMonitor")
    if sm["apiVersion"] != "monitoring.coreos.com/v1":
        raise Failure(sm["apiVersion"])
    if sm["spec"]["selector"]["matchLabels"] != svc["metadata"]["labels"]:
        raise Failure("the ServiceMonitor does not select the Service")
    names = {p["name"] for p in svc["spec"]["ports"]}
    if [e["port"] for e in sm["spec"]["endpoints"]] != ["metrics"] or names != {"metrics"}:
        raise Failure(f"endpoints {sm['spec']['endpoints']} vs service ports {svc['spec']['ports']}")
    pod = pod_spec(kind(ds, "DaemonSet"))
    host = [c for c in pod["containers"] if c["name"] == "host"][0]
    if host["ports"] != [{"name": "metrics", "containerPort": 9464}] or svc["spec"]["ports"][0]["targetPort"] != "metrics":
        raise Failure("the Service does not reach the container's metrics port")


def case_other_values_render_everywhere(ctx):
    """Another port, other roots, ECS and a Falco URL, an image-signing key: each shows up in every
    place that needs it, and the result still passes the security checks and the binary's options."""
    pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAabc=\n-----END PUBLIC KEY-----\n"

    def edit(v):
        v["metrics"]["port"] = 9555
        v["host_rules"] = [{"path": "/host/opt/app", "severity": "critical", "tags": ["app"]}]
        v["sinks"] = {"format": "ecs", "falco_url": "http://falcosidekick.falco:2801/", "syslog": True}
        v["image_baselines"]["public_keys"] = {"ci": pem}
    rc, ds, err = render(ctx, edit=edit)
    if rc != 0:
        raise Failure(err)
    pod = pod_spec(kind(ds, "DaemonSet"))
    check_security(pod, "rendered")
    check_empty_dirs(pod, "rendered")
    check_commands(ctx, fimctl_lines(pod))
    host = [c for c in pod["containers"] if c["name"] == "host"][0]
    cmd = " ".join(host["command"])
    for want in ("--metrics 0.0.0.0:9555", "--format ecs", "--falco-url http://falcosidekick.falco:2801/", "--syslog"):
        if want not in cmd:
            raise Failure(f"{want!r} not in {cmd}")
    if host["ports"][0]["containerPort"] != 9555 or kind(ds, "Service")["spec"]["ports"][0]["port"] != 9555:
        raise Failure("the port is not 9555 everywhere")
    if kind(ds, "NetworkPolicy")["spec"]["ingress"][0]["ports"][0]["port"] != 9555:
        raise Failure("the NetworkPolicy admits another port")
    policies = [d for d in ds if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "fimctl-policy"][0]["data"]
    if 'path = "/host/opt/app"' not in policies["host.toml"]:
        raise Failure(policies["host.toml"])
    path = os.path.join(ctx.tmp, "host.toml")
    with open(path, "w") as f:
        f.write(policies["host.toml"])
    if subprocess.run([ctx.fimctl, "-c", path, "config", "check"], capture_output=True).returncode != 0:
        raise Failure("the rendered policy does not pass config check")
    keys = [d for d in ds if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "fimctl-image-keys"]
    if not keys or keys[0]["data"] != {"ci.pub": pem}:
        raise Failure(f"image-signing key ConfigMap: {keys}")
    ctr = [c for c in pod["containers"] if c["name"] == "containers"][0]
    mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
    if not mounts.get("/etc/fimctl/keys/images", {}).get("readOnly"):
        raise Failure("the image-signing keys are not mounted read-only in /etc/fimctl/keys/images")
    for meta in ("/var/lib/containers", "/run/containers", "/var/lib/docker", "/run/containerd"):
        if not mounts.get(meta, {}).get("readOnly"):
            raise Failure(f"the runtime metadata {meta} is not mounted read-only at the node's path")
    if "import-image-baseline" not in " ".join(ctr["args"]):
        raise Failure("shipped image baselines are not imported")


def case_bad_values_refused_with_a_clear_error(ctx):
    bad = {
        "metrics.port": (lambda v: v["metrics"].__setitem__("port", 70000), "metrics.port"),
        "relative root": (lambda v: v["host_rules"].append({"path": "usr/bin"}), "not an absolute path"),
        "severity": (lambda v: v["container_rules"].__setitem__(0, {"path": "/x", "severity": "urgent"}), "severity"),
        "unknown key": (lambda v: v.__setitem__("replicas", 3), "unknown key"),
        "private key": (lambda v: v["image_baselines"].__setitem__(
            "public_keys", {"ci": "-----BEGIN PRIVATE KEY-----\nx\n"}), "never a private one"),
        "format": (lambda v: v["sinks"].__setitem__("format", "xml"), "ndjson or ecs"),
        "no prometheus labels": (lambda v: v["metrics"].__setitem__("prometheus_pod_labels", {}), "only they may scrape"),
    }
    for what, (edit, says) in bad.items():
        rc, ds, err = render(ctx, edit=edit)
        if rc != 2 or says not in err or ds:
            raise Failure(f"{what}: exit {rc}, {err.strip()!r}")
    rc, ds, err = render(ctx, values="namespace: [unclosed\n")
    if rc != 2 or not err.startswith("k8s-render:"):
        raise Failure(f"malformed YAML: exit {rc}, {err!r}")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-k8s-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
