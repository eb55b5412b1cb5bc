"""GSM8K answer extraction and matching on hand-made strings."""
import pytest

from eval.gsm8k import (INVALID, cot_answer, exact_match, extract_answer_is, extract_auto, extract_boxed,
                        extract_flexible, extract_strict, is_correct, numeric_match, to_number)


@pytest.mark.parametrize("text, want", [
    ("so 16 - 3 - 4 = 9 eggs.\n#### 9", "9"),
    ("The total is #### 1,234", "1,234"),
    ("#### -3", "-3"),
    ("#### 12.50\nQuestion:", "12.50"),
    ("first #### 5 then #### 6", "5"),  # lm-eval takes the first match
    ("#### $12", INVALID),  # '$' is not in the strict character class
    ("no marker 42", INVALID),
    ("####7", INVALID),  # the space is required
    ("", INVALID),
])
def test_strict(text, want):
    assert extract_strict(text) == want


@pytest.mark.parametrize("text, want", [
    ("She pays $12.50 in total.", "$12.50"),
    ("3 + 4 = 7", "7"),
    ("Answer: -15 degrees", "-15"),
    ("It costs 1,234 dollars.", "1,234"),
    ("the answer is 8.", "8."),  # lm-eval keeps the dot; exact_match deletes a final '.'
    ("x = 5, y = 6", "6"),
    ("no digits", INVALID),
])
def test_flexible(text, want):
    assert extract_flexible(text) == want


@pytest.mark.parametrize("text, want", [
    ("So 5 + 4 = 9. The answer is 9.", "9"),
    ("The answer is 7.", "7"),
    ("The answer is 1,200 apples.", "1,200"),
    ("The answer is -2. Q:", "-2."),  # greedy class takes the dot; exact_match deletes it
    ("The answer is 7", INVALID),  # lm-eval's pattern needs a character after the number
    ("the answer is 7.", INVALID),  # case-sensitive, as in lm-eval
])
def test_answer_is(text, want):
    assert extract_answer_is(text) == want


@pytest.mark.parametrize("text, want", [
    (r"Thus the total is \boxed{42}.", "42"),
    (r"\boxed{1} then corrected: \boxed{ 2 }", "2"),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
    (r"\boxed{\$18}", r"\$18"),
    (r"\boxed{42", INVALID),
    ("no box", INVALID),
])
def test_boxed(text, want):
    assert extract_boxed(text) == want


@pytest.mark.parametrize("text, want", [
    (r"... so \boxed{18}. The answer is 20.", "18"),
    ("Therefore, the final answer is: $1,234.", "1,234"),
    ("The answer is **7**.", "7"),
    ("blah\n#### 12", "12"),
    ("we get 3 and then 5", "5"),
    ("nothing", INVALID),
])
def test_auto(text, want):
    assert extract_auto(text) == want


@pytest.mark.parametrize("pred, ref, ok", [
    ("1,234", "so ... #### 1234", True),
    ("$12", "#### 12", True),
    ("8.", "#### 8", True),
    ("12.50", "#### 12.5", False),  # string match, as lm-eval
    ("-3", "#### -3", True),
    (INVALID, "#### 3", False),
])
def test_exact_match_like_lm_eval(pred, ref, ok):
    assert exact_match(pred, ref) is ok


@pytest.mark.parametrize("s, want", [
    ("$1,234.50", 1234.5), ("-7", -7.0), ("50%", 50.0), ("3/4", 0.75), (r"\frac{3}{4}", 0.75),
    (r"\$18", 18.0), (r"18 \text{ dollars}", 18.0), ("12.", 12.0), (INVALID, None), ("abc", None),
])
def test_to_number(s, want):
    assert to_number(s) == want


def test_numeric_match():
    assert numeric_match("12.50", "#### 12.5")
    assert numeric_match(r"\$1,000", "blah #### 1,000")
    assert not numeric_match("999", "#### 1,000")
    assert is_correct("4.50", "#### 4.5", "numeric") and not is_correct("4.50", "#### 4.5", "exact")


def test_cot_answer():
    ans = "He has 3 + 4 = <<3+4=7>>7 apples.\nThen 7 * 2 = <<7*2=14>>14.\n#### 14"
    assert cot_answer(ans) == "He has 3 + 4 = 7 apples. Then 7 * 2 = 14. The answer is 14."
