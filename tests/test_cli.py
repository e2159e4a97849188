"""The CLI through typer's CliRunner: output, JSON schema and exact error text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from replybot.cli import app

runner = CliRunner()


def run(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def test_help_lists_every_command_with_help_text():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("suggest", "validate", "eval", "prepare"):
        assert command in result.output
        sub = run(command, "--help")
        assert sub.exit_code == 0 and len(sub.output) > 80


def test_help_does_not_import_heavy_modules():
    code = (
        "import sys\n"
        "from replybot import cli\n"
        "sys.argv = ['replybot', '--help']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'faiss', 'sklearn') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_validate_passes_on_the_repository():
    result = run("validate")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("全部通过：13 个意图")


def test_validate_reports_a_broken_shop(tmp_path):
    shop = tmp_path / "shop.yml"
    shop.write_text("agent_authority:\n  max_round_off: -3\n", encoding="utf-8")
    result = run("validate", "--shop", str(shop))
    assert result.exit_code == 2
    assert result.output == f"错误: {shop}:2: agent_authority.max_round_off: 数值超出范围（Input should be greater than or equal to 0）\n"


@pytest.mark.parametrize(
    "args,input,message",
    [
        (["suggest", ""], None, "错误: 消息为空：请提供买家的消息内容\n"),
        (["suggest", "   \n\t"], None, "错误: 消息为空：请提供买家的消息内容\n"),
        (["suggest", "-"], b"\xff\xfe\x00bad", "错误: 标准输入不是有效的 UTF-8 文本\n"),
        (["suggest", "在吗", "--turn", "seller:你好"], None, '错误: --turn 格式应为 buyer:文本 或 agent:文本（收到 "seller:你好"）\n'),
        (["suggest", "在吗", "--turn", "buyer:  "], None, '错误: --turn 的内容为空（"buyer:  "）\n'),
    ],
)
def test_bad_input_gives_one_line(args, input, message, use_real_cache):
    result = run(*args, input=input)
    assert result.exit_code == 2
    assert result.output == message


def test_context_file_not_json(tmp_path, use_real_cache):
    ctx = tmp_path / "ctx.json"
    ctx.write_text("[{\"role\": \"buyer\",", encoding="utf-8")
    result = run("suggest", "那41码呢", "--context", str(ctx))
    assert result.exit_code == 2
    assert result.output == f"错误: {ctx}:1: 前文文件不是有效的 JSON（Expecting property name enclosed in double quotes）\n"


def test_context_file_wrong_shape(tmp_path, use_real_cache):
    ctx = tmp_path / "ctx.json"
    ctx.write_text(json.dumps([{"role": "boss", "text": "hi"}]), encoding="utf-8")
    result = run("suggest", "那41码呢", "--context", str(ctx))
    assert result.exit_code == 2
    assert result.output.startswith(f"错误: {ctx}: 第 0.role 项无效")


def test_context_file_missing(tmp_path, use_real_cache):
    result = run("suggest", "在吗", "--context", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert result.output == f"错误: {tmp_path / 'nope.json'}: 无法读取前文文件（No such file or directory）\n"


def test_suggest_human_output(use_real_cache):
    result = run("suggest", "能便宜点吗")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "意图: 议价（bargain）" in out
    assert "买家类型: 试探型（probing）" in out
    assert "  1. " in out and "  2. " in out and "  3. " in out and "  4. " not in out
    assert "政策提示:" in out


def test_suggest_json_schema(use_real_cache):
    result = run("suggest", "能便宜点吗", "--json", "-k", "2")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in ("intent", "intent_confidence", "alternatives", "abstained", "buyer_type", "buyer_type_confidence", "drafts"):
        assert key in data
    assert len(data["drafts"]) == 2
    assert set(data["drafts"][0]) >= {"id", "text", "score", "notes"}
    assert set(data["alternatives"][0]) >= {"intent", "confidence"}


def test_suggest_reads_stdin(use_real_cache):
    result = run("suggest", "-", "--json", input="什么时候发货呀".encode())
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["intent"] == "shipping"


def test_suggest_with_turns(use_real_cache):
    result = run("suggest", "那XL呢", "--turn", "buyer:黑色M码还有吗", "--turn", "agent:亲，M码刚卖完了", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["intent"] == "out_of_stock" and data["context_used"]


def test_suggest_with_own_shop_changes_filled_values(tmp_path, use_real_cache):
    shop = tmp_path / "shop.yml"
    shop.write_text("name: 小林鞋铺\nshipping:\n  free_shipping_threshold: 59\n", encoding="utf-8")
    result = run("suggest", "满多少包邮", "--shop", str(shop), "--json", "-k", "5")
    assert result.exit_code == 0, result.output
    assert "59" in result.output


def test_own_shop_sets_how_long_a_promised_item_is_held(tmp_path, use_real_cache):
    shop = tmp_path / "shop.yml"
    shop.write_text("products:\n  stock_hold_hours: 12\n", encoding="utf-8")
    result = run("suggest", "说好给我留的那件能留多久", "--shop", str(shop), "--json", "-k", "3")
    assert result.exit_code == 0, result.output
    held = next(d for d in json.loads(result.stdout)["drafts"] if d["id"] == "oos-hold-time")
    assert "保留12小时" in held["text"]


def test_bad_k(use_real_cache):
    result = run("suggest", "在吗", "-k", "0")
    assert result.exit_code == 2
    assert result.output == "错误: -k 应在 1 到 20 之间（收到 0）\n"


def test_prepare_reports_index_and_encoder_layers(use_real_cache):
    r = run("prepare")
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[-2].startswith("模型和索引") and "条例句" in lines[-2]
    assert lines[-1].startswith("向量模型：")
