"""The model process: calls go through it to the scripted server over real HTTP (litellm runs
in the child), and what goes wrong with the child itself still ends every call with a reason."""

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from app.llm import LLMFailure, ModelEndpoint, Usage
from app.model_process import ModelProcess
from tests.conftest import run_coroutine
from tests.llm_server import Reply, ScriptedLLM

TEXT = "A queue consumer that acknowledges after the write commits. " * 4
T = TypeVar("T")


@pytest.fixture
def process() -> Iterator[ModelProcess]:
    """A model process of the test's own, so killing it touches no other test."""
    own = ModelProcess()
    yield own
    own.stop()


def endpoint(llm: ScriptedLLM, timeout_s: float = 30.0) -> ModelEndpoint:
    return ModelEndpoint("openai/scripted-model", llm.api_base, "test-key", timeout_s)


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


async def answered(process: ModelProcess, llm: ScriptedLLM) -> str:
    return "".join([p async for p in process.stream(endpoint(llm), [], usage=None)])


@contextlib.contextmanager
def stopped_child(process: ModelProcess, llm: ScriptedLLM) -> Iterator[int]:
    """The pid of a child that has started and answered "Up.", then stopped with SIGSTOP (as a
    wedged child looks: alive, reading nothing); "Still here." is scripted for the next call.
    The child is let go on the way out, should the test end before it is killed."""
    llm.script(Reply(text="Up."), Reply(text="Still here."))
    assert run_coroutine(answered(process, llm)) == "Up."
    hung = process.pid
    assert hung is not None
    os.kill(hung, signal.SIGSTOP)
    try:
        yield hung
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGCONT)


def test_a_stream_arrives_in_pieces_with_its_usage(process: ModelProcess, llm: ScriptedLLM) -> None:
    llm.script(Reply(text=TEXT, chunk_size=10, prompt_tokens=21, completion_tokens=34))

    async def collect() -> tuple[list[str], Usage]:
        usage = Usage()
        messages = [{"role": "user", "content": "How does it fail?"}]
        pieces = [p async for p in process.stream(endpoint(llm), messages, usage=usage)]
        return pieces, usage

    pieces, usage = run_coroutine(collect())
    assert "".join(pieces) == TEXT
    assert len(pieces) > 1
    assert (usage.tokens_in, usage.tokens_out) == (21, 34)
    assert llm.requests[0]["messages"] == [{"role": "user", "content": "How does it fail?"}]
    assert process.pid is not None
    assert process.pid != os.getpid()


def test_a_failure_comes_back_classified(process: ModelProcess, llm: ScriptedLLM) -> None:
    llm.script(Reply(status=429, error_message="slow down", headers={"Retry-After": "7"}))

    async def call() -> None:
        await process.complete_json(endpoint(llm), [{"role": "user", "content": "JSON please"}])

    with pytest.raises(LLMFailure) as raised:
        run_coroutine(call())
    assert raised.value.kind == "rate_limited"
    assert "slow down" in raised.value.reason
    assert raised.value.retry_after_s == 7.0


def test_an_answer_kept_coming_as_whitespace_times_out_and_is_closed(
    process: ModelProcess, llm: ScriptedLLM
) -> None:
    """A non-streamed answer preceded by newlines, as some providers keep a connection open
    while the model writes: each newline reset the connection's read timeout, so a model
    that hung behind them kept a judgement or a draft waiting for ever. The whole answer must
    now arrive within the timeout.

    A first call answered at once warms the child: on a busy machine its first call's own
    start (litellm's lazy imports, the HTTP client) could take the whole second, and the
    request was then never sent, so there was no connection for the timeout to close."""
    reply = Reply(text='{"ok": true}', delay_s=4.0, keep_alive_s=0.1)
    llm.script(Reply(text='{"warm": true}'), reply)
    messages = [{"role": "user", "content": "JSON please"}]

    async def call() -> None:
        await process.complete_json(endpoint(llm, timeout_s=1.0), messages)

    warm = run_coroutine(process.complete_json(endpoint(llm), messages))
    assert warm.data == {"warm": True}
    with pytest.raises(LLMFailure) as raised:
        run_coroutine(call())
    assert raised.value.kind == "timeout"
    assert "1 s" in raised.value.reason
    assert reply.abandoned.wait(5)  # the connection was closed, not left reading


def test_a_child_that_dies_fails_its_calls_and_the_next_call_starts_another(
    process: ModelProcess, llm: ScriptedLLM
) -> None:
    llm.script(Reply(text=TEXT, chunk_size=4, delay_s=0.05), Reply(text="Still here."))

    received: list[str] = []

    async def killed_mid_stream() -> None:
        async for piece in process.stream(endpoint(llm), [], usage=None):
            received.append(piece)
            if len(received) == 3:
                assert process.pid is not None
                os.kill(process.pid, signal.SIGKILL)

    with pytest.raises(LLMFailure) as raised:
        run_coroutine(killed_mid_stream())
    failure, partial = raised.value, "".join(received)
    assert TEXT.startswith(partial)
    assert len(partial) < len(TEXT)  # (a piece already on its way may still arrive)
    assert failure.kind == "unavailable"
    assert "model process stopped unexpectedly" in failure.reason

    async def again() -> str:
        return "".join([p async for p in process.stream(endpoint(llm), [], usage=None)])

    assert run_coroutine(again()) == "Still here."


def test_a_stream_given_up_is_cancelled_in_the_child(
    process: ModelProcess, llm: ScriptedLLM
) -> None:
    """Closing the stream (a cancelled reply) closes the model's connection too, instead of
    leaving the child reading a reply nobody wants until the model finishes it."""
    reply = Reply(text=TEXT * 5, chunk_size=2, delay_s=0.05)
    llm.script(reply)

    async def give_up() -> None:
        stream = process.stream(endpoint(llm), [], usage=None)
        async for _piece in stream:
            break
        await stream.aclose()
        await wait_until(reply.abandoned.is_set)

    run_coroutine(give_up())


def test_a_child_stopped_mid_stream_fails_its_calls_at_once(
    process: ModelProcess, llm: ScriptedLLM
) -> None:
    """Not after the call's timeout: a stopped child's calls end with a reason right away."""
    llm.script(Reply(text=TEXT * 5, chunk_size=2, delay_s=0.05))

    async def stopped_mid_stream() -> None:
        async for _piece in process.stream(endpoint(llm, timeout_s=600), [], usage=None):
            await asyncio.to_thread(process.stop)

    with pytest.raises(LLMFailure) as raised:
        run_coroutine(stopped_mid_stream())
    assert raised.value.kind == "unavailable"
    assert "model process stopped when it was told to" in raised.value.reason


def test_a_child_that_stops_answering_while_idle_is_replaced(
    process: ModelProcess, llm: ScriptedLLM
) -> None:
    """A child stopped (or wedged) with no call in flight would have taken every later call
    with it, each waiting its timeout plus the margin; it is killed within a check's
    deadline, and the next call goes to a new child."""
    with stopped_child(process, llm) as hung:

        async def replaced() -> str:
            await wait_until(lambda: process.pid != hung, timeout_s=60)
            return await answered(process, llm)

        assert run_coroutine(replaced()) == "Still here."
    assert process.pid not in (None, hung)
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left stopped
        os.kill(hung, 0)


def run_releasing(main: Coroutine[Any, Any, T], hung: int, deadline_s: float = 120.0) -> T:
    """run_coroutine with a deadline that holds even when the event loop is blocked (where no
    asyncio timeout can fire): past it the stopped child is killed, which ends a write stuck
    on its pipe, so a blocked loop fails the test instead of hanging the suite."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        running = pool.submit(asyncio.run, main)
        try:
            return running.result(timeout=deadline_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung, signal.SIGKILL)
            running.result(timeout=30)  # whatever it raised once released
            raise AssertionError(
                f"the event loop was still blocked after {deadline_s:g} s"
            ) from None
    finally:
        pool.shutdown(wait=False)


def test_a_request_too_big_for_a_stopped_childs_pipe_leaves_the_event_loop_running(
    process: ModelProcess, llm: ScriptedLLM
) -> None:
    """A stopped child reads nothing, so its pipe (64 KiB) fills: the request was written from
    the event loop and held it, and every page and API request of the server, until the child
    was killed for not answering. The write now waits on a thread of its own; the call fails
    with the reason once the child is killed, and its request never reaches a new child."""
    prompt = "Every order is written once, whatever the retries. " * 10_000  # about 500 KiB

    async def meanwhile() -> tuple[int, int | None, LLMFailure]:
        messages = [{"role": "user", "content": prompt}]
        call = asyncio.create_task(process.complete_json(endpoint(llm), messages))
        turns_while_pending = 0  # a blocked loop turns only once the child is killed
        for _ in range(20):
            await asyncio.sleep(0.01)
            turns_while_pending += not call.done()
        pid_meanwhile = process.pid
        with pytest.raises(LLMFailure) as raised:
            await call
        return turns_while_pending, pid_meanwhile, raised.value

    with stopped_child(process, llm) as hung:
        turns_while_pending, pid_meanwhile, failure = run_releasing(meanwhile(), hung)
        assert (turns_while_pending, pid_meanwhile) == (20, hung)  # not yet killed meanwhile
        assert failure.kind == "unavailable"
        assert "The model process stopped answering" in failure.reason
        assert run_coroutine(answered(process, llm)) == "Still here."
    assert process.pid not in (None, hung)
    assert len(llm.requests) == 2  # the big request was dropped with its child, not resent
    assert all(prompt not in str(request) for request in llm.requests)
