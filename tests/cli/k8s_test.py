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
# and open_by_handle_at, /proc/PID/root of other processes.
ALLOWED_CAPS = {"SYS_ADMIN", "DAC_READ_SEARCH", "SYS_PTRACE"}


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
    vols = {v["name"]: v for v in spec["volumes"]}
    for c in containers(spec):
        for m in c.get("volumeMounts", []):
            hp = vols[m["name"]].get("hostPath")
            if hp and hp["path"] not in ("/var/lib/fimctl", "/etc/fimctl/keys") and not m.get("readOnly"):
                raise Failure(f"{c['name']}: host path {hp['path']} mounted writable")
            if hp and hp["path"] == "/etc/fimctl/keys" and c["name"] != "setup" and not m.get("readOnly"):
                raise Failure(f"{c['name']}: the key directory is writable outside the setup container")
    if check_commands(ctx, fimctl_lines(spec)) < 4:
        raise Failure("expected the key, init, watch and check command lines")


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


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-k8s-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
