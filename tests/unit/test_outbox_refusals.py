"""Which producer errors make the outbox relay count a refusal against a row (and
quarantine it after the bounded attempts), and which never do."""

from __future__ import annotations

import pytest
from aiokafka import errors as kafka_errors

from alumni_kit.errors import is_transient
from alumni_kit.outbox import RowTooLargeToSendError, is_producer_out_of_step, is_refusal, refusal_reason


@pytest.mark.parametrize(
    "exc",
    [
        kafka_errors.MessageSizeTooLargeError(),
        kafka_errors.RecordTooLargeError(),
        kafka_errors.CorruptRecordException(),
        kafka_errors.for_code(87)(),  # INVALID_RECORD, unknown to aiokafka 0.14
        RowTooLargeToSendError(),
    ],
)
def test_refusals_of_the_record_itself_count_against_the_row(exc: BaseException) -> None:
    assert is_refusal(exc)
    assert not is_producer_out_of_step(exc)


def _retriable_broker_errors() -> list[type[kafka_errors.BrokerResponseError]]:
    return [cls for cls in kafka_errors.kafka_errors.values() if cls.retriable]


@pytest.mark.parametrize("cls", _retriable_broker_errors(), ids=lambda cls: cls.__name__)
def test_no_error_the_client_retries_is_a_refusal(cls: type[kafka_errors.BrokerResponseError]) -> None:
    assert not is_refusal(cls())


@pytest.mark.parametrize(
    "exc",
    [
        kafka_errors.KafkaConnectionError(),
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.NodeNotReadyError(),
        kafka_errors.TopicAuthorizationFailedError(),  # a configuration fault: every row of the topic
        ConnectionRefusedError(),
    ],
)
def test_outages_and_configuration_are_never_the_rows_fault(exc: BaseException) -> None:
    assert not is_refusal(exc)
    assert not is_producer_out_of_step(exc)


def test_a_producer_out_of_step_blames_no_row() -> None:
    exc = kafka_errors.OutOfOrderSequenceNumber()
    assert is_producer_out_of_step(exc)
    assert not is_refusal(exc)
    assert not is_transient(exc)  # the relay itself must renew the producer


def test_the_reason_is_the_brokers_description_never_the_exceptions_text() -> None:
    exc = kafka_errors.MessageSizeTooLargeError("ola.nordmann@example.org")
    reason = refusal_reason(exc)
    assert reason.startswith("MessageSizeTooLargeError (error code 10): The server has a configurable maximum")
    assert "ola.nordmann" not in reason
