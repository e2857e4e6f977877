#!/usr/bin/env python3
"""Deploy infra/template.yaml into the local AWS emulator (moto server), for the end-to-end tests.

    $VENV/bin/python infra/local_stack.py deploy --endpoint http://127.0.0.1:PORT --stack NAME [--param Key=Value ...]
    $VENV/bin/python infra/local_stack.py delete --endpoint http://127.0.0.1:PORT --stack NAME
    $VENV/bin/python infra/local_stack.py expand [--param Key=Value ...]     # the CloudFormation, on stdout
    $VENV/bin/python infra/local_stack.py dashboards [--param Key=Value ...] # each dashboard's body, as JSON

`deploy` expands the SAM transform offline (aws-sam-translator; no AWS call, account
123456789012, region us-east-1 as moto uses), creates the stack through the emulator's
CloudFormation, waits for CREATE_COMPLETE, applies through the service APIs what moto's
CloudFormation skips, and prints exactly one JSON object on stdout: the stack's outputs by name.
Everything else (progress, the deviations below) goes to stderr. Exit 1 with a message on any
failure. Needs boto3 and aws-sam-translator (the venv of scripts/test has both).

`delete` deletes the stack (best effort: moto keeps resources marked Retain, and a bucket with
objects; the tests' emulator is thrown away anyway).

How the local stack differs from a deployment in AWS, one line each (also printed to stderr, for
the resources the expanded template holds):

- AWS::Lambda::Function, AWS::Lambda::EventSourceMapping: left out. Running a function needs
  Docker, and moto's event source mapping would consume the queue's messages itself; the tests
  receive from the queue and call the handler in-process. FunctionErrorsAlarm and the
  Function* outputs go with them.
- Function code (CodeUri): replaced by a placeholder S3 URI before the SAM expansion (the
  translator wants an S3 location; `sam deploy` uploads the zip).
- Rules (the parameter assertions, e.g. one Redshift target): not evaluated by moto; the local
  stack has no warehouse.
- Parameters: moto checks no AllowedValues/AllowedPattern/MinValue/MaxValue; this script does,
  and passes every parameter explicitly (moto does not split a CommaDelimitedList default).
  TaskImage defaults to glueless:local; TaskSubnets/TaskSecurityGroups to the emulator's default
  VPC subnet and default security group (ECS RunTask in moto wants an existing subnet).
- AWS::S3::Bucket: moto's CloudFormation applies only the name, encryption and tags. The
  EventBridge notification setting, public access block, versioning, lifecycle rules and
  ownership controls are applied after the stack through the S3 API (moto stores lifecycle
  rules, never runs them).
- AWS::S3::BucketPolicy: not supported by moto's CloudFormation; not applied (moto evaluates no
  bucket policy; it only denies requests without TLS, and the emulator is plain HTTP).
- AWS::Events::Rule: the event pattern is a JSON string built from DatasetPrefixes; moto's
  CloudFormation JSON-encodes a string pattern a second time, so the rule is created with a
  placeholder and the pattern, resolved by moto from the same template expression, is set with
  PutRule after the stack. Targets, DLQ config and retry policy come from the stack.
- AWS::SQS::QueuePolicy: not supported by moto's CloudFormation; the resolved policy is set with
  SetQueueAttributes(Policy) (moto stores it, enforces nothing).
- AWS::DynamoDB::Table: TTL and point-in-time recovery are skipped by moto's CloudFormation;
  applied with UpdateTimeToLive and UpdateContinuousBackups (moto never expires items).
- AWS::CloudWatch::Alarm: not supported by moto's CloudFormation; created with PutMetricAlarm
  from the resolved properties (moto never evaluates alarms).
- AWS::ECS::TaskDefinition: moto's CloudFormation keeps only family, containers, volumes and
  memory; revision 2 is registered with every property (cpu, awsvpc, FARGATE, roles, runtime
  platform) and TaskDefinitionArn names it. Nothing runs: moto's RunTask only records a task.
- AWS::ECS::Cluster: capacity providers and Container Insights are not applied (no local effect).
- AWS::SNS::Subscription (AlertEmail), AWS::Chatbot::SlackChannelConfiguration and its role:
  not supported by moto's CloudFormation; left out when their parameters are set.
- AWS::CloudWatch::Dashboard: created by moto's CloudFormation (moto draws nothing); its graphs
  of the left-out function name it as Function-not-deployed-locally.
- IAM roles and policies, the KMS key, log groups: created by moto, which evaluates no
  permission and encrypts nothing. Policy statements written as
  `Fn::If [condition, statement, AWS::NoValue]` are resolved by this script first: moto's
  CloudFormation leaves a null entry there, which its IAM rejects as a malformed policy.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import time
from pathlib import Path

REGION = "us-east-1"  # moto's default account, 123456789012, is the one the stack lands in
TEMPLATE = Path(__file__).resolve().with_name("template.yaml")
PLACEHOLDER_CODE_URI = "s3://glueless-local-artifacts/glueless-lambda.zip"
LOCAL_OUTPUT = "GluelessLocal"  # prefix of the outputs this script adds to read resolved values
PLACEHOLDER_PATTERN = {"source": ["glueless.local-stack.placeholder"]}

# Types left out of the local stack, with the reason (printed as a deviation).
LEFT_OUT = {
    "AWS::Lambda::Function": "running a function needs Docker; the tests call the handler in-process",
    "AWS::Lambda::EventSourceMapping": "moto's mapping would consume the queue's messages itself; the tests receive them",
    "AWS::Lambda::Permission": "its function is not deployed locally",
    "AWS::S3::BucketPolicy": "moto's CloudFormation does not support it, and moto evaluates no bucket policy "
    "(this one only denies requests without TLS; the emulator is plain HTTP)",
    "AWS::SNS::Subscription": "not supported by moto's CloudFormation (an e-mail endpoint cannot confirm locally)",
    "AWS::Chatbot::SlackChannelConfiguration": "not supported by moto; Slack is out of reach",
}
# Types kept when they refer to a left-out resource: the reference becomes a stand-in name.
STAND_INS = {
    "AWS::CloudWatch::Dashboard": "its graphs of the function's metrics stay, empty (no function runs locally)",
}
# Types moto's CloudFormation skips but this script applies through the API after the stack.
APPLIED_AFTER = {
    "AWS::SQS::QueuePolicy": "not supported by moto's CloudFormation; set with SetQueueAttributes(Policy) "
    "(moto enforces no policy)",
    "AWS::CloudWatch::Alarm": "not supported by moto's CloudFormation; created with PutMetricAlarm "
    "(moto never evaluates alarms)",
}


class Failure(Exception):
    """A failure with a message for a person; main() prints it and exits 1."""


def note(msg: str) -> None:
    print(f"local_stack: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Template: load, parameters, SAM expansion
# --------------------------------------------------------------------------------------------


def load_template(path: Path) -> dict:
    try:
        from samtranslator.yaml_helper import yaml_parse
    except ImportError as e:
        raise Failure(
            f"aws-sam-translator is not installed in {sys.executable} ({e}); "
            f"install it: {Path(sys.executable).parent}/pip install aws-sam-translator"
        )
    return yaml_parse(path.read_text())


def parse_params(pairs: list[str]) -> dict[str, str]:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise Failure(f"--param {p!r} is not Key=Value")
        out[key] = value
    return out


def param_values(template: dict, given: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Every parameter's value as a string (defaults filled in), checked the way CloudFormation
    checks them; and the names still missing (no default, not given)."""
    slots = template.get("Parameters", {})
    unknown = sorted(set(given) - set(slots))
    if unknown:
        raise Failure(f"unknown parameter(s) {', '.join(unknown)}; the template takes {', '.join(sorted(slots))}")
    values, missing = {}, []
    for name, slot in slots.items():
        if name in given:
            v = given[name]
        elif "Default" in slot:
            d = slot["Default"]
            v = ",".join(str(x) for x in d) if isinstance(d, list) else str(d)
        else:
            missing.append(name)
            continue
        check_param(name, slot, v)
        values[name] = v
    return values, missing


def check_param(name: str, slot: dict, value: str) -> None:
    kind = slot.get("Type", "String")
    items = value.split(",") if (kind == "CommaDelimitedList" or kind.startswith("List<")) else [value]
    for item in items:
        if "AllowedValues" in slot and item not in [str(a) for a in slot["AllowedValues"]]:
            raise Failure(f"parameter {name}={item!r} is not one of {slot['AllowedValues']}")
        if "AllowedPattern" in slot and not re.fullmatch(slot["AllowedPattern"], item):
            why = slot.get("ConstraintDescription", f"the pattern {slot['AllowedPattern']}")
            raise Failure(f"parameter {name}={item!r} does not match: {why}")
        if kind == "Number":
            try:
                n = float(item)
            except ValueError:
                raise Failure(f"parameter {name}={item!r} is not a number")
            if "MinValue" in slot and n < float(slot["MinValue"]):
                raise Failure(f"parameter {name}={item} is below its MinValue {slot['MinValue']}")
            if "MaxValue" in slot and n > float(slot["MaxValue"]):
                raise Failure(f"parameter {name}={item} is above its MaxValue {slot['MaxValue']}")


def expand(template: dict, values: dict[str, str]) -> dict:
    """The SAM transform, offline. The function's CodeUri becomes a placeholder S3 URI: the
    translator wants an S3 location (sam deploy / aws cloudformation package upload the zip)."""
    template = copy.deepcopy(template)
    for res in template.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(res.get("Properties", {}).get("CodeUri"), str):
            if not res["Properties"]["CodeUri"].startswith("s3://"):
                res["Properties"]["CodeUri"] = PLACEHOLDER_CODE_URI
    # The translator takes the region (for ARNs' partition) from the boto3 session.
    os.environ["AWS_DEFAULT_REGION"] = REGION
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:  # only consulted for policy names in SAM Policies; we use none
        def load(self) -> dict:
            return {}

    try:
        return transform(template, dict(values), NoManagedPolicies())
    except Exception as e:  # the translator's errors carry the resource and the reason
        raise Failure(f"the SAM transform of {TEMPLATE} failed: {e}")


# --------------------------------------------------------------------------------------------
# Localising the expanded template for moto
# --------------------------------------------------------------------------------------------


def references(node) -> set[str]:
    """Logical ids a template fragment refers to (Ref, GetAtt, Sub, Condition-free)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                found.add(v[0] if isinstance(v, list) else str(v).split(".")[0])
            elif k == "Fn::Sub":
                text, local = (v[0], v[1]) if isinstance(v, list) else (v, {})
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    name = name.split(".")[0]
                    if name not in local:
                        found.add(name)
                if isinstance(v, list):
                    found |= references(v[1])
            else:
                found |= references(v)
    elif isinstance(node, list):
        for v in node:
            found |= references(v)
    return found


def condition_holds(template: dict, name: str, values: dict[str, str]) -> bool:
    """Evaluates a condition of this template (Equals/Not/And/Or over Ref of parameters and
    other conditions): enough to tell whether a left-out resource would exist at all."""

    def ev(node):
        if isinstance(node, dict):
            (k, v), = node.items()
            if k == "Ref":
                return values.get(v, v)
            if k == "Condition":
                return ev(template["Conditions"][v])
            if k == "Fn::Equals":
                return str(ev(v[0])) == str(ev(v[1]))
            if k == "Fn::Not":
                return not ev(v[0])
            if k == "Fn::And":
                return all(ev(x) for x in v)
            if k == "Fn::Or":
                return any(ev(x) for x in v)
            raise Failure(f"condition {name}: {k} is not understood by local_stack.py")
        return node

    return bool(ev(template["Conditions"][name]))


def localise(cfn: dict, values: dict[str, str], deviations: list[str]) -> tuple[dict, dict]:
    """The template moto gets, and what to apply after the stack: {kind: [logical ids]}."""
    cfn = copy.deepcopy(cfn)
    resources = cfn["Resources"]
    outputs = cfn.setdefault("Outputs", {})
    later: dict[str, list[str]] = {"bucket": [], "rule": [], "queue_policy": [], "table": [], "alarm": [], "task": []}

    if cfn.pop("Rules", None):
        deviations.append("Rules (parameter assertions): not evaluated by moto; the local stack has no warehouse")

    removed: dict[str, str] = {}
    for lid, res in list(resources.items()):
        t = res["Type"]
        cond = res.get("Condition")
        if t in LEFT_OUT:
            if cond and not condition_holds(cfn, cond, values):
                del resources[lid]  # would not exist with these parameters anyway
                continue
            removed[lid] = f"{t}: left out: {LEFT_OUT[t]}"
    # Anything that refers to a left-out resource goes too (e.g. the function's alarm, the
    # Chatbot role only when Slack is set).
    changed = True
    while changed:
        changed = False
        for lid, res in list(resources.items()):
            if lid in removed:
                continue
            cond = res.get("Condition")
            if cond and not condition_holds(cfn, cond, values):
                continue
            gone = sorted((references(res) | set(_depends(res))) & set(removed))
            if gone and res["Type"] in STAND_INS:
                # Kept: what it names of a left-out resource becomes a stand-in name.
                for g in gone:
                    res["Properties"] = _stand_in(res["Properties"], g, f"{g}-not-deployed-locally")
                deviations.append(
                    f"{lid} - {res['Type']}: {', '.join(gone)} named as "
                    f"{', '.join(g + '-not-deployed-locally' for g in gone)}: {STAND_INS[res['Type']]}"
                )
            elif gone:
                removed[lid] = f"{res['Type']}: left out: it refers to {', '.join(gone)}, which is left out"
                changed = True
    for lid, why in removed.items():
        deviations.append(f"{lid} - {why}")
        del resources[lid]
    for name, out in list(outputs.items()):
        gone = sorted(references(out) & set(removed))
        if gone:
            deviations.append(f"output {name}: not produced ({', '.join(gone)} left out)")
            del outputs[name]

    def read_back(lid: str, what) -> None:
        outputs[f"{LOCAL_OUTPUT}{lid}"] = {"Value": {"Fn::ToJsonString": what}}

    for lid, res in list(resources.items()):
        t, props = res["Type"], res.get("Properties", {})
        if res.get("Condition") and not condition_holds(cfn, res["Condition"], values):
            continue
        if t == "AWS::S3::Bucket":
            later["bucket"].append(lid)
            read_back(lid, props)
            deviations.append(
                f"{lid} - {t}: EventBridge notifications, public access block, versioning, lifecycle rules and "
                "ownership controls set through the S3 API after the stack (moto's CloudFormation applies only "
                "name, encryption and tags; moto stores lifecycle rules, never runs them)"
            )
        elif t == "AWS::Events::Rule" and _is_string_pattern(props.get("EventPattern")):
            later["rule"].append(lid)
            outputs[f"{LOCAL_OUTPUT}{lid}"] = {"Value": props["EventPattern"]}
            props["EventPattern"] = PLACEHOLDER_PATTERN
            deviations.append(
                f"{lid} - {t}: its EventPattern is a JSON string, which moto's CloudFormation encodes a second "
                "time; created with a placeholder, then the pattern (resolved by moto from the template) set "
                "with PutRule"
            )
        elif t == "AWS::SQS::QueuePolicy":
            later["queue_policy"].append(lid)
            read_back(lid, props)
            del resources[lid]
            deviations.append(f"{lid} - {t}: {APPLIED_AFTER[t]}")
        elif t == "AWS::DynamoDB::Table":
            later["table"].append(lid)
            read_back(lid, props)
            deviations.append(
                f"{lid} - {t}: TTL and point-in-time recovery set with UpdateTimeToLive and "
                "UpdateContinuousBackups (moto's CloudFormation skips them; moto never expires items)"
            )
        elif t == "AWS::CloudWatch::Alarm":
            later["alarm"].append(lid)
            read_back(lid, props)
            del resources[lid]
            deviations.append(f"{lid} - {t}: {APPLIED_AFTER[t]}")
        elif t == "AWS::ECS::TaskDefinition":
            later["task"].append(lid)
            read_back(lid, props)
            deviations.append(
                f"{lid} - {t}: moto's CloudFormation keeps only family, containers, volumes and memory; revision 2 "
                "registered with every property and named by the outputs (moto's RunTask only records a task)"
            )
        elif t == "AWS::ECS::Cluster":
            deviations.append(f"{lid} - {t}: capacity providers and Container Insights not applied (no local effect)")
        elif t in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::KMS::Key", "AWS::Logs::LogGroup"):
            deviations.append(f"{lid} - {t}: created by moto, which evaluates no permission and encrypts nothing")
    # The statements of a policy that are `Fn::If [c, {...}, AWS::NoValue]` come out of moto's
    # CloudFormation as null entries; drop the false branches here, as CloudFormation does.
    if _resolve_statement_ifs(cfn, values):
        deviations.append(
            "IAM policy statements written as Fn::If [condition, statement, AWS::NoValue]: resolved by this script "
            "(moto's CloudFormation leaves a null entry, which its IAM rejects as a malformed policy)"
        )
    return cfn, later


def _stand_in(node, lid: str, name: str):
    """`node` with every Ref of `lid` (and `${lid}` in an Fn::Sub text) replaced by `name`."""
    if isinstance(node, dict):
        if node == {"Ref": lid}:
            return name
        out = {}
        for k, v in node.items():
            if k == "Fn::Sub":
                text, local = (v[0], v[1]) if isinstance(v, list) else (v, None)
                text = re.sub(r"\$\{" + re.escape(lid) + r"(\.[^}]*)?\}", name, text)
                out[k] = [text, _stand_in(local, lid, name)] if local is not None else text
            else:
                out[k] = _stand_in(v, lid, name)
        return out
    if isinstance(node, list):
        return [_stand_in(v, lid, name) for v in node]
    return node


def _is_string_pattern(pattern) -> bool:
    """A literal string, or an intrinsic function (Fn::Sub, Fn::Join...) that makes one."""
    if isinstance(pattern, str):
        return True
    return isinstance(pattern, dict) and len(pattern) == 1 and next(iter(pattern)).startswith("Fn::")


def _depends(res: dict) -> list[str]:
    d = res.get("DependsOn", [])
    return [d] if isinstance(d, str) else list(d)


def _resolve_statement_ifs(cfn: dict, values: dict[str, str]) -> int:
    resolved = 0

    def walk(node):
        nonlocal resolved
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "Statement" and isinstance(v, list):
                    kept = []
                    for st in v:
                        if isinstance(st, dict) and set(st) == {"Fn::If"}:
                            cond, yes, no = st["Fn::If"]
                            st = yes if condition_holds(cfn, cond, values) else no
                            resolved += 1
                            if st == {"Ref": "AWS::NoValue"}:
                                continue
                        kept.append(st)
                    node[k] = kept
                walk(node[k])
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(cfn["Resources"])
    return resolved


# --------------------------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------------------------


def clients(endpoint: str):
    try:
        import boto3
        from botocore.config import Config
    except ImportError as e:
        raise Failure(f"boto3 is not installed in {sys.executable} ({e}); use the venv that has moto[server]")
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    cfg = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)
    return lambda name: session.client(name, endpoint_url=endpoint, config=cfg)


def default_network(client) -> tuple[str, str]:
    ec2 = client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise Failure("the emulator has no default VPC; pass --param TaskSubnets=... --param TaskSecurityGroups=...")
    vpc = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"]
    if not subnets or not groups:
        raise Failure(f"the emulator's default VPC {vpc} has no subnet or no default security group")
    return sorted(s["SubnetId"] for s in subnets)[0], groups[0]["GroupId"]


def wait_for(cf, stack: str, done: set[str], timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        st = cf.describe_stacks(StackName=stack)["Stacks"][0]
        status = st["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            if status in done:
                return st
            reasons = []
            try:
                for ev in cf.describe_stack_events(StackName=stack)["StackEvents"]:
                    if ev.get("ResourceStatus", "").endswith("FAILED"):
                        reasons.append(f"{ev.get('LogicalResourceId')}: {ev.get('ResourceStatusReason')}")
            except Exception:  # noqa: BLE001 - the status is the message; events only help
                pass
            raise Failure(f"stack {stack} ended {status}" + ("".join(f"\n  {r}" for r in reasons)))
        if time.monotonic() > deadline:
            raise Failure(f"stack {stack} still {status} after {timeout_s:.0f} s")
        time.sleep(0.2)


def lifecycle_rules(cfn_rules: list[dict]) -> list[dict]:
    """CloudFormation's LifecycleConfiguration rules in the S3 API's shape."""
    out = []
    for r in cfn_rules:
        rule = {"ID": r.get("Id", ""), "Status": r["Status"], "Filter": {"Prefix": r.get("Prefix", "")}}
        if "ExpirationInDays" in r:
            rule["Expiration"] = {"Days": int(r["ExpirationInDays"])}
        elif r.get("ExpiredObjectDeleteMarker"):
            rule["Expiration"] = {"ExpiredObjectDeleteMarker": True}
        if "NoncurrentVersionExpiration" in r:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(r["NoncurrentVersionExpiration"]["NoncurrentDays"])}
        if "AbortIncompleteMultipartUpload" in r:
            days = int(r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
        out.append(rule)
    return out


def camel(node, keep_keys: bool = False):
    """PascalCase CloudFormation keys to the ECS API's camelCase (LogConfiguration.Options keys
    are Docker's and stay as they are)."""
    if isinstance(node, dict):
        return {
            (k if keep_keys else k[:1].lower() + k[1:]): camel(v, keep_keys=(k == "Options"))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [camel(v) for v in node]
    return node


def apply_after(client, stack: str, later: dict, outputs: dict, physical: dict) -> dict[str, str]:
    """What moto's CloudFormation skipped; returns outputs to override."""
    resolved = {k[len(LOCAL_OUTPUT):]: v for k, v in outputs.items() if k.startswith(LOCAL_OUTPUT)}
    overrides: dict[str, str] = {}

    def props(lid: str):
        raw = resolved.get(lid)
        if raw is None:
            raise Failure(f"moto did not resolve the properties of {lid} (output {LOCAL_OUTPUT}{lid} is missing)")
        return json.loads(raw) if isinstance(raw, str) else raw

    s3 = client("s3")
    for lid in later["bucket"]:
        p, bucket = props(lid), physical[lid]
        if p.get("NotificationConfiguration", {}).get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
        if "PublicAccessBlockConfiguration" in p:
            block = {k: bool(v) for k, v in p["PublicAccessBlockConfiguration"].items()}
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
        if "OwnershipControls" in p:
            s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=p["OwnershipControls"])
        if "VersioningConfiguration" in p:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": p["VersioningConfiguration"]["Status"]})
        if "LifecycleConfiguration" in p:
            rules = lifecycle_rules(p["LifecycleConfiguration"]["Rules"])
            s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})

    events = client("events")
    for lid in later["rule"]:
        pattern = resolved.get(lid)
        if not pattern:
            raise Failure(f"moto did not resolve the event pattern of {lid}")
        json.loads(pattern)  # a broken pattern is a template bug: say so here, not at PutRule
        rule = events.describe_rule(Name=physical[lid])
        events.put_rule(
            Name=physical[lid],
            EventPattern=pattern,
            State=rule.get("State", "ENABLED"),
            Description=rule.get("Description", ""),
        )

    sqs = client("sqs")
    for lid in later["queue_policy"]:
        p = props(lid)
        for url in p["Queues"]:
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])})

    ddb = client("dynamodb")
    for lid in later["table"]:
        p, table = props(lid), physical[lid]
        ttl = p.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(
                TableName=table,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])},
            )
        pitr = p.get("PointInTimeRecoverySpecification")
        if pitr:
            ddb.update_continuous_backups(
                TableName=table,
                PointInTimeRecoverySpecification={
                    "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled"))
                },
            )

    cw = client("cloudwatch")
    for lid in later["alarm"]:
        p = props(lid)
        p.setdefault("AlarmName", f"{stack}-{lid}")
        for k in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if k in p:
                p[k] = int(p[k])
        for m in p.get("Metrics", []):
            if "MetricStat" in m:
                m["MetricStat"]["Period"] = int(m["MetricStat"]["Period"])
        if "Threshold" in p:
            p["Threshold"] = float(p["Threshold"])
        cw.put_metric_alarm(**p)

    ecs = client("ecs")
    for lid in later["task"]:
        p = camel(props(lid))
        for k in ("cpu", "memory"):
            if k in p:
                p[k] = str(p[k])
        for c in p.get("containerDefinitions", []):
            for k in ("memory", "memoryReservation", "cpu"):
                if k in c:
                    c[k] = int(c[k])
        arn = ecs.register_task_definition(**p)["taskDefinition"]["taskDefinitionArn"]
        for name, value in outputs.items():
            if value == physical[lid]:
                overrides[name] = arn
    return overrides


def create_stack(cf, args, **request) -> None:
    """CreateStack, tried up to three times when the emulator itself fails (an HTTP 500 page
    instead of an answer, seen when several stacks are created at once): any stack that
    attempt left behind is deleted first. A refusal of the template (a ClientError) is never
    tried again."""
    from botocore.exceptions import ClientError

    for attempt in range(1, 4):
        try:
            cf.create_stack(StackName=args.stack, **request)
            return
        except ClientError as e:  # the emulator's answer: the reason is in it
            raise Failure(f"CreateStack {args.stack} at {args.endpoint} failed: {e}")
        except Exception as e:  # no answer, or not one botocore could read
            if attempt == 3 or "500" not in str(e):
                raise Failure(f"CreateStack {args.stack} at {args.endpoint} failed: {e}")
            note(f"CreateStack {args.stack}: the emulator failed ({type(e).__name__}); trying again")
            delete(args)
            time.sleep(0.5 * attempt)


def deploy(args) -> int:
    template = load_template(TEMPLATE)
    given = parse_params(args.param)
    client = clients(args.endpoint)
    deviations: list[str] = []

    # Required parameters without a value: the local stand-ins.
    slots = template.get("Parameters", {})
    if "TaskImage" in slots and "TaskImage" not in given:
        given["TaskImage"] = "glueless:local"
        deviations.append("parameter TaskImage: glueless:local (nothing runs it: moto's RunTask only records a task)")
    if ("TaskSubnets" in slots and "TaskSubnets" not in given) or ("TaskSecurityGroups" in slots and "TaskSecurityGroups" not in given):
        subnet, group = default_network(client)
        given.setdefault("TaskSubnets", subnet)
        given.setdefault("TaskSecurityGroups", group)
        deviations.append(
            f"parameters TaskSubnets/TaskSecurityGroups: the emulator's default VPC ({given['TaskSubnets']}, "
            f"{given['TaskSecurityGroups']}); moto's RunTask wants an existing subnet"
        )
    values, missing = param_values(template, given)
    if missing:
        raise Failure(f"parameter(s) without a default need a value: {', '.join(missing)} (--param Key=Value)")
    deviations.append(
        "parameters: checked by this script against AllowedValues/AllowedPattern/MinValue/MaxValue (moto checks "
        "none) and all passed explicitly (moto does not split a CommaDelimitedList default)"
    )
    deviations.append(
        "function code: CodeUri replaced by a placeholder S3 URI for the offline SAM expansion (sam deploy uploads the zip)"
    )

    cfn = expand(template, values)
    local, later = localise(cfn, values, deviations)
    note(f"how this local stack differs from AWS ({len(deviations)}):")
    for d in deviations:
        note(f"  deviation: {d}")

    cf = client("cloudformation")
    note(f"creating stack {args.stack} at {args.endpoint}")
    create_stack(
        cf,
        args,
        TemplateBody=json.dumps(local),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    st = wait_for(cf, args.stack, {"CREATE_COMPLETE"})
    outputs = {o["OutputKey"]: o["OutputValue"] for o in st.get("Outputs", [])}
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cf.describe_stack_resources(StackName=args.stack)["StackResources"]
        if "LogicalResourceId" in r  # moto lists a resource whose condition is false without one
    }
    try:
        overrides = apply_after(client, args.stack, later, outputs, physical)
    except Failure:
        raise
    except Exception as e:  # a refused API call: name the step that failed
        raise Failure(f"applying what moto's CloudFormation skips to stack {args.stack} failed: {e}")
    result = {k: v for k, v in outputs.items() if not k.startswith(LOCAL_OUTPUT)}
    result.update(overrides)
    absent = sorted(k for k in local["Outputs"] if not k.startswith(LOCAL_OUTPUT) and k not in result)
    if absent:
        raise Failure(f"stack {args.stack} is missing outputs {', '.join(absent)} (moto could not resolve them)")
    note(f"stack {args.stack} is ready ({len(result)} outputs)")
    print(json.dumps(result, sort_keys=True))
    return 0


def delete(args) -> int:
    cf = clients(args.endpoint)("cloudformation")
    try:
        cf.describe_stacks(StackName=args.stack)
    except Exception as e:
        if "does not exist" in str(e):
            note(f"stack {args.stack} does not exist: nothing to delete")
            return 0
        raise
    try:
        cf.delete_stack(StackName=args.stack)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stacks = cf.describe_stacks(StackName=args.stack)["Stacks"]
            if not stacks or stacks[0]["StackStatus"] in ("DELETE_COMPLETE", "DELETE_FAILED"):
                break
            time.sleep(0.2)
    except Exception as e:  # best effort: a stack that is already gone is fine
        if "does not exist" not in str(e):
            note(f"delete of stack {args.stack}: {e}")
    note(f"stack {args.stack} deleted (resources marked Retain, and non-empty buckets, stay)")
    return 0


def offline_values(template: dict, given: dict[str, str]) -> dict[str, str]:
    """Every parameter's value, with placeholders for those that have no default, so that the
    expansion can run offline."""
    given = dict(given)
    for name, slot in template.get("Parameters", {}).items():
        if name not in given and "Default" not in slot:
            kind = slot.get("Type", "String")
            given[name] = {
                "List<AWS::EC2::Subnet::Id>": "subnet-0123456789abcdef0",
                "List<AWS::EC2::SecurityGroup::Id>": "sg-0123456789abcdef0",
            }.get(kind, "placeholder")
    values, _ = param_values(template, given)
    return values


def expand_cmd(args) -> int:
    template = load_template(TEMPLATE)
    values = offline_values(template, parse_params(args.param))
    print(json.dumps(expand(template, values), indent=1, sort_keys=False))
    return 0


PSEUDO = {"AWS::Region": REGION, "AWS::AccountId": "123456789012", "AWS::StackName": "glueless", "AWS::Partition": "aws",
          "AWS::URLSuffix": "amazonaws.com"}


def sub_offline(sub, values: dict[str, str]) -> str:
    """An Fn::Sub resolved offline: parameters to their values, pseudo parameters to the local
    stack's, a resource `${R}` or `${R.Attr}` to the stand-in `R` or `R-Attr` (letters, digits
    and dashes: what a name or an ARN would not break in JSON either)."""
    text, local = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})

    def one(m: re.Match) -> str:
        name = m.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in local:
            v = local[name]
            return v if isinstance(v, str) else f"{name}-value"
        if name in values:
            return values[name]
        if name in PSEUDO:
            return PSEUDO[name]
        return name.replace(".", "-")

    return re.sub(r"\$\{([^}]*)\}", one, text)


def dashboards_cmd(args) -> int:
    template = load_template(TEMPLATE)
    values = offline_values(template, parse_params(args.param))
    cfn = expand(template, values)
    bodies = {}
    for lid, res in cfn["Resources"].items():
        if res["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        body = res["Properties"]["DashboardBody"]
        text = sub_offline(body["Fn::Sub"], values) if isinstance(body, dict) and "Fn::Sub" in body else body
        if not isinstance(text, str):
            raise Failure(f"{lid}: DashboardBody is neither a string nor an Fn::Sub: {body!r}")
        try:
            bodies[lid] = json.loads(text)
        except json.JSONDecodeError as e:
            near = text[max(0, e.pos - 80) : e.pos + 80]
            raise Failure(f"{lid}: DashboardBody is not JSON after Fn::Sub: {e}; near:\n{near}")
        for i, w in enumerate(bodies[lid].get("widgets", [])):
            if not isinstance(w, dict) or "type" not in w or "properties" not in w:
                raise Failure(f"{lid}: widget {i} has no type or properties: {w!r}")
    if not bodies:
        raise Failure(f"{TEMPLATE} has no AWS::CloudWatch::Dashboard")
    print(json.dumps(bodies, indent=1))
    return 0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("deploy", help="create the stack in the emulator and print its outputs as JSON")
    d.add_argument("--endpoint", required=True, help="the emulator, e.g. http://127.0.0.1:5000")
    d.add_argument("--stack", required=True, help="stack name (unique per test)")
    d.add_argument("--param", action="append", default=[], metavar="Key=Value", help="a template parameter (repeatable)")
    x = sub.add_parser("delete", help="delete the stack (best effort)")
    x.add_argument("--endpoint", required=True)
    x.add_argument("--stack", required=True)
    e = sub.add_parser("expand", help="print the template after the SAM transform (for the offline checks)")
    e.add_argument("--param", action="append", default=[], metavar="Key=Value")
    b = sub.add_parser("dashboards", help="print each dashboard's body, Fn::Sub resolved offline (fails unless it is JSON)")
    b.add_argument("--param", action="append", default=[], metavar="Key=Value")
    args = ap.parse_args(argv)
    try:
        return {"deploy": deploy, "delete": delete, "expand": expand_cmd, "dashboards": dashboards_cmd}[args.cmd](args)
    except Failure as f:
        print(f"local_stack: error: {f}", file=sys.stderr)
        return 1
    except Exception as e:  # botocore's errors (no emulator there, a refused call) say what happened
        if type(e).__module__.startswith("botocore"):
            where = getattr(args, "endpoint", "")
            print(f"local_stack: error: {args.cmd} against {where}: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
