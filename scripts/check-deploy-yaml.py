#!/usr/bin/env python3
"""Checks the campaign deployments parse and agree with each other:
.github/workflows/nightly.yml and deploy/k8s/*.yaml.

Beyond YAML syntax it checks what a typo would silently break: the shard
count is the same everywhere, each shard runs `raft-driver campaign --shard`
with the shared seed, the Indexed Job derives its shard from
JOB_COMPLETION_INDEX, and the merge steps run `raft-driver summarize` and
exit with its code. Exit 0 when all holds, 1 with the reasons otherwise,
2 when PyYAML is missing.

Usage: scripts/check-deploy-yaml.py [REPO_ROOT]
"""
import os
import sys

try:
    import yaml
except ImportError:
    print("check-deploy-yaml: PyYAML is missing (apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(2)

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
problems = []


def need(cond, what):
    if not cond:
        problems.append(what)


def load(rel):
    path = os.path.join(root, rel)
    with open(path) as f:
        try:
            return [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            problems.append("%s: not YAML: %s" % (rel, e))
            return []


# The workflow.
wf_docs = load(".github/workflows/nightly.yml")
if wf_docs:
    wf = wf_docs[0]
    # PyYAML reads the bare key `on` as True.
    need("on" in wf or True in wf, "nightly.yml: no trigger (on:)")
    shards = int(wf.get("env", {}).get("SHARDS", 0))
    jobs = wf.get("jobs", {})
    camp = jobs.get("campaign", {})
    matrix = camp.get("strategy", {}).get("matrix", {}).get("shard", [])
    need(matrix == list(range(1, shards + 1)),
         "nightly.yml: matrix shards %r are not 1..SHARDS=%d" % (matrix, shards))
    steps = " ".join(str(s.get("run", "")) for s in camp.get("steps", []))
    need("raft-driver campaign" in steps and '--shard "${{ matrix.shard }}/${SHARDS}"' in steps,
         "nightly.yml: the campaign step does not run campaign --shard K/SHARDS")
    need("--seed" in steps, "nightly.yml: shards do not share a seed")
    uploads = [s for s in camp.get("steps", []) if "upload-artifact" in str(s.get("uses", ""))]
    need(uploads and uploads[0].get("if") == "always()",
         "nightly.yml: the campaign folder is not uploaded whatever the verdict")
    merge = jobs.get("merge", {})
    need(merge.get("needs") == "campaign" and merge.get("if") == "always()",
         "nightly.yml: merge must need campaign and run always()")
    msteps = merge.get("steps", [])
    need(any("download-artifact" in str(s.get("uses", "")) for s in msteps),
         "nightly.yml: merge downloads no artifacts")
    mrun = " ".join(str(s.get("run", "")) for s in msteps)
    need("raft-driver summarize" in mrun and "exit $code" in mrun,
         "nightly.yml: merge does not gate on summarize's exit code")

# Kubernetes.
k8s = load("deploy/k8s/campaign-indexed-job.yaml") + load("deploy/k8s/campaign-merge-job.yaml")
by_kind = {}
for d in k8s:
    need(isinstance(d, dict) and "apiVersion" in d and "kind" in d and "metadata" in d,
         "k8s: a document lacks apiVersion/kind/metadata: %r" % (d,))
    if isinstance(d, dict):
        by_kind.setdefault(d.get("kind"), []).append(d)
cm = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind.get("ConfigMap", [])}
pvcs = {p["metadata"]["name"] for p in by_kind.get("PersistentVolumeClaim", [])}
jobs = {j["metadata"]["name"]: j for j in by_kind.get("Job", [])}
indexed = [j for j in jobs.values() if j["spec"].get("completionMode") == "Indexed"]
need(len(indexed) == 1, "k8s: expected one Indexed Job, found %d" % len(indexed))
merges = [j for j in jobs.values() if j["spec"].get("completionMode") != "Indexed"]
need(len(merges) == 1, "k8s: expected one merge Job, found %d" % len(merges))


def pod(job):
    return job["spec"]["template"]["spec"]


def script(job):
    c = pod(job)["containers"][0]
    return " ".join(c.get("command", []) + c.get("args", []))


def claims(job):
    return {v["persistentVolumeClaim"]["claimName"]
            for v in pod(job).get("volumes", []) if "persistentVolumeClaim" in v}


def configmaps(job):
    return {e["configMapRef"]["name"] for e in pod(job)["containers"][0].get("envFrom", [])}


for j in indexed:
    s = j["spec"]
    names = configmaps(j)
    data = cm.get(next(iter(names), None), {})
    k8s_shards = int(data.get("SHARDS", 0))
    need(s.get("completions") == s.get("parallelism") == k8s_shards,
         "k8s: completions %r, parallelism %r and SHARDS %r differ"
         % (s.get("completions"), s.get("parallelism"), k8s_shards))
    text = script(j)
    need("JOB_COMPLETION_INDEX + 1" in text and '--shard "${k}/${SHARDS}"' in text,
         "k8s: the shard is not JOB_COMPLETION_INDEX + 1 of SHARDS")
    need("--seed" in text and "CAMPAIGN_SEED" in data, "k8s: shards do not share a seed")
    need(pod(j).get("restartPolicy") == "Never", "k8s: a shard pod must not restart in place")
    need(claims(j) and claims(j) <= pvcs, "k8s: shards do not write to the shared volume")
for m in merges:
    text = script(m)
    need("raft-driver summarize" in text and "exit $code" in text,
         "k8s: the merge Job does not exit with summarize's code")
    need(m["spec"].get("backoffLimit") == 0, "k8s: a verdict must not be retried")
    need(indexed and claims(m) == claims(indexed[0]), "k8s: merge and shards use different volumes")

if problems:
    for p in problems:
        print("check-deploy-yaml: " + p, file=sys.stderr)
    sys.exit(1)
print("check-deploy-yaml: nightly.yml and deploy/k8s agree (%d k8s documents)" % len(k8s))
