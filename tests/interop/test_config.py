"""Configuration file: parsing, unknown keys, path resolution, `sealpost check`."""

from __future__ import annotations

import re
import shutil
import tomllib
import pytest

from harness import REPO, assert_fails, assert_ok, run_binary

TABLES = ["", "tls", "tls.certificate", "listen", "limits", "log"]
SYNTAX_OR_SCHEMA_ERROR = re.compile(
    r"unknown (field|key|section|table|variant)|parse error|invalid type|duplicate key", re.I
)


def readme_toml_blocks() -> list:
    readme = REPO / "README.md"
    blocks = re.findall(r"^```toml[ \t]*\n(.*?)^```", readme.read_text(), re.S | re.M) if readme.exists() else []
    if not blocks:
        return [pytest.param(None, marks=pytest.mark.skip(reason="README.md has no ```toml block yet"))]
    return [pytest.param(text, id=f"block{i}") for i, text in enumerate(blocks, 1)]


def test_check_accepts_valid_config(run):
    result = assert_ok(run("check"))
    assert any(line.startswith("ok") for line in result.out.splitlines()), f"no line starting 'ok':\n{result}"


def test_config_from_environment_variable(sealpost_bin, instance):
    result = run_binary(sealpost_bin, ["check"], env={"SEALPOST_CONFIG": str(instance.config_path)})
    assert_ok(result)


def test_config_option_after_subcommand(sealpost_bin, instance):
    assert_ok(run_binary(sealpost_bin, ["check", "--config", instance.config_path]))


def test_unknown_subcommand_is_usage_error(run):
    result = run("frobnicate")
    assert result.code == 2, f"usage errors exit 2:\n{result}"


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t or "top-level")
def test_unknown_key_is_named(instance, run, table):
    key = f"bogus_{table.replace('.', '_') or 'top'}_key"
    instance.config.extra[table] = f'{key} = "x"'
    instance.write_config()
    assert_fails(run("check"), 2, key)


def test_unknown_section_is_named(instance, run):
    instance.config.extra["frobnicator"] = "enabled = true"
    instance.write_config()
    assert_fails(run("check"), 2, "frobnicator")


def test_invalid_listen_address_is_named(instance, run):
    instance.config.listen["imaps"] = ["127.0.0.1:notaport"]
    instance.write_config()
    assert_fails(run("check"), 2, "127.0.0.1:notaport")


def test_missing_certificate_file_is_named(instance, run):
    instance.config.cert = "missing-cert.pem"
    instance.write_config()
    assert_fails(run("check"), 2, "missing-cert.pem")


def test_key_not_matching_certificate(instance, certs, run):
    shutil.copyfile(certs.stray_key, instance.folder / "stray-key.pem")
    instance.config.key = "stray-key.pem"
    instance.write_config()
    result = run("check")
    assert_fails(result, 2)
    assert "stray-key.pem" in result.err or "cert.pem" in result.err, f"names neither file:\n{result}"


def test_expired_certificate(instance, certs, run):
    certs.expired.copy_to(instance.folder, "expired.pem", "expired-key.pem")
    instance.config.cert, instance.config.key = "expired.pem", "expired-key.pem"
    instance.write_config()
    result = run("check")
    assert_fails(result, 2, "expired.pem")
    assert re.search(r"expire|not valid after|notafter", result.err, re.I), f"does not say expired:\n{result}"


def test_certificate_not_covering_hostname(instance, run):
    instance.config.hostname = "wrong.test.example"
    instance.write_config()
    assert_fails(run("check"), 2, "wrong.test.example")


def test_relative_paths_resolve_against_config_folder(sealpost_bin, instance, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # Absolute config path, foreign working directory: cert.pem and data/ are next to the config.
    assert_ok(run_binary(sealpost_bin, ["--config", instance.config_path, "check"], cwd=elsewhere))
    assert_ok(run_binary(sealpost_bin, ["--config", instance.config_path, "domain", "add", "rel.test.example"],
                         cwd=elsewhere))
    data = instance.folder / "data"
    assert data.is_dir() and any(data.iterdir()), f"store not created in {data}"
    assert not (elsewhere / "data").exists(), "data_dir resolved against the working directory"
    # Relative config path: resolved against the cwd, then data_dir against the config's folder.
    relative = instance.config_path.relative_to(tmp_path)
    result = assert_ok(run_binary(sealpost_bin, ["--config", relative, "domain", "list"], cwd=tmp_path))
    assert "rel.test.example" in result.out.split(), result
    assert not (tmp_path / "data").exists(), "data_dir resolved against the working directory"


@pytest.mark.parametrize("text", readme_toml_blocks())
def test_readme_toml_examples_parse(sealpost_bin, tmp_path, text):
    tomllib.loads(text)  # the example itself is valid TOML
    # Keep the example's data_dir off the real file system.
    text = re.sub(r'(?m)^data_dir\s*=.*$', 'data_dir = "data"', text)
    config = tmp_path / "sealpost.toml"
    config.write_text(text)
    result = run_binary(sealpost_bin, ["--config", config, "check"], cwd=tmp_path)
    # The certificate named by the example does not exist here, so `check` may fail -- but not on the schema.
    assert "panicked" not in result.err, str(result)
    assert not SYNTAX_OR_SCHEMA_ERROR.search(result.err), f"README example rejected by the schema:\n{text}\n{result}"
