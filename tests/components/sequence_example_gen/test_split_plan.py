"""The split is planned from the scan: it adapts to the data's span and refuses a useless one."""
import pytest

from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig, epoch_day
from ctxrec.components.sequence_example_gen.input_tables import EventsScan, InputError
from ctxrec.components.sequence_example_gen.split_plan import plan_split

FIRST = epoch_day("2026-01-01")


def _scan(per_day):
  return EventsScan(conversions_by_day={FIRST + d: n for d, n in enumerate(per_day)})


@pytest.mark.parametrize("days, window", [(9, 2), (30, 6), (60, 7), (3, 1), (1, 1)])
def test_default_window_is_a_share_of_the_span_capped_at_a_week(days, window):
  config = SequenceExampleGenConfig()
  assert config.eval_window_days(FIRST, FIRST + days - 1) == window


def test_plan_counts_examples_each_side_of_the_cut_off():
  plan = plan_split(SequenceExampleGenConfig(min_train_examples=1), _scan([100] * 9),
                    "events.parquet")
  assert plan.eval_start_date == "2026-01-08"
  assert (plan.train_examples, plan.eval_examples) == (700, 200)


def test_train_smaller_than_eval_stops_with_sizes_and_flags():
  # Nine days of logs with the old fixed 7-day window: 2 train days against 7 eval days.
  with pytest.raises(InputError) as error:
    plan_split(SequenceExampleGenConfig(eval_days=7, min_train_examples=1), _scan([30] * 9),
               "events.csv")
  message = str(error.value)
  assert message.startswith("events.csv: the train split is smaller than the eval split")
  assert "train 60 conversions" in message and "eval 210" in message
  assert "--eval-days" in message and "--eval-start-date" in message


def test_train_under_the_floor_stops():
  with pytest.raises(InputError, match="too few train examples.*under the floor of 100"):
    plan_split(SequenceExampleGenConfig(), _scan([5] * 20), "events.parquet")


def test_all_conversions_on_one_day_stop_before_any_example():
  with pytest.raises(InputError, match="all 500 conversions fall on one day .2026-01-01."):
    plan_split(SequenceExampleGenConfig(), _scan([500]), "events.parquet")


def test_an_eval_start_after_the_data_leaves_eval_empty():
  config = SequenceExampleGenConfig(eval_start_date="2027-01-01", min_train_examples=1)
  with pytest.raises(InputError, match="the eval split would be empty"):
    plan_split(config, _scan([10] * 5), "events.parquet")
