"""Evaluation tasks as small declarative definitions.

A `TaskSpec` says where the data is (a folder under the data dir, or a dataset name where the network
allows), which split is scored, how a prompt is written (the lm-evaluation-harness templates, copied from
lm-eval 0.4.13's task YAMLs: ``lm_eval/tasks/mmlu/default/_default_template_yaml``,
``.../mmlu/continuation/_continuation_template_yaml``, ``lm_eval/tasks/gsm8k/gsm8k.yaml`` and
``gsm8k-cot.yaml``), where few-shot examples come from, how the answer is read and which metric counts.
The evaluators (``eval.mmlu``, ``eval.gsm8k``) interpret the spec; the registry lists them:

    TASKS.create("gsm8k")  -> TaskSpec       TASKS.names() -> [...]
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from specdec.registry import Registry

# MMLU subject -> category, from lm-eval 0.4.13 lm_eval/tasks/mmlu/_generate_configs.py (SUBJECTS).
MMLU_SUBJECTS: dict[str, str] = {
    "abstract_algebra": "stem", "anatomy": "stem", "astronomy": "stem", "business_ethics": "other",
    "clinical_knowledge": "other", "college_biology": "stem", "college_chemistry": "stem",
    "college_computer_science": "stem", "college_mathematics": "stem", "college_medicine": "other",
    "college_physics": "stem", "computer_security": "stem", "conceptual_physics": "stem",
    "econometrics": "social_sciences", "electrical_engineering": "stem", "elementary_mathematics": "stem",
    "formal_logic": "humanities", "global_facts": "other", "high_school_biology": "stem",
    "high_school_chemistry": "stem", "high_school_computer_science": "stem",
    "high_school_european_history": "humanities", "high_school_geography": "social_sciences",
    "high_school_government_and_politics": "social_sciences", "high_school_macroeconomics": "social_sciences",
    "high_school_mathematics": "stem", "high_school_microeconomics": "social_sciences",
    "high_school_physics": "stem", "high_school_psychology": "social_sciences", "high_school_statistics": "stem",
    "high_school_us_history": "humanities", "high_school_world_history": "humanities", "human_aging": "other",
    "human_sexuality": "social_sciences", "international_law": "humanities", "jurisprudence": "humanities",
    "logical_fallacies": "humanities", "machine_learning": "stem", "management": "other", "marketing": "other",
    "medical_genetics": "other", "miscellaneous": "other", "moral_disputes": "humanities",
    "moral_scenarios": "humanities", "nutrition": "other", "philosophy": "humanities", "prehistory": "humanities",
    "professional_accounting": "other", "professional_law": "humanities", "professional_medicine": "other",
    "professional_psychology": "social_sciences", "public_relations": "social_sciences",
    "security_studies": "social_sciences", "sociology": "social_sciences", "us_foreign_policy": "social_sciences",
    "virology": "other", "world_religions": "humanities",
}
MMLU_CATEGORIES = ("stem", "humanities", "social_sciences", "other")
LETTERS = ("A", "B", "C", "D")

# The zero-shot chat instruction (Qwen2.5 / Qwen2.5-Math's recommended CoT prompt for math questions).
CHAT_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class TaskSpec:
    """One evaluation task. Templates use ``str.format`` fields (``{question}``, ``{subject}``, ``{A}``..)."""

    name: str
    family: str  # "mmlu" | "gsm8k": which evaluator runs it
    scoring: str  # mmlu: "letter" | "cloze" | "mlm";  gsm8k: "generate"
    dataset: str  # folder under the data dir (mmlu/<split>/<subject>_<split>.csv, gsm8k/<split>.jsonl)
    hf_dataset: str  # the usual dataset name, used with --dataset hf (needs the network and `datasets`)
    split: str  # scored split
    fewshot_split: str | None  # where few-shot examples come from
    num_fewshot: int = 0
    fewshot_sampler: str = "first_n"  # "first_n" (in file order) | "lm-eval-random" (lm-eval's default sampler)
    fewshot_seed: int = 1234  # lm-eval's default fewshot seed (lm_eval/defaults.py DEFAULT_OTHER_SEED)
    description: str = ""  # prompt header
    doc_to_text: str = ""  # the question part of one example
    fewshot_answer: str = "target"  # how a few-shot example's answer is written: "letter" | "target" | "cot"
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    chat: bool = False  # apply the model's chat template (zero-shot user turn)
    chat_instruction: str = ""
    stop: tuple[str, ...] = ()
    max_new_tokens: int = 256
    extractors: tuple[str, ...] = ()  # answer extraction filters, reported side by side
    primary: str = "acc"  # the headline metric
    notes: str = ""

    def with_options(self, **kw) -> "TaskSpec":
        """A copy with fields changed (e.g. num_fewshot=5, max_new_tokens=512)."""
        kw = {k: v for k, v in kw.items() if v is not None}
        return replace(self, **kw) if kw else self

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


TASKS: Registry[TaskSpec] = Registry("task")


def _mmlu_letter() -> TaskSpec:
    return TaskSpec(
        name="mmlu", family="mmlu", scoring="letter", dataset="mmlu", hf_dataset="cais/mmlu", split="test",
        fewshot_split="dev", num_fewshot=0, fewshot_sampler="first_n",
        description="The following are multiple choice questions (with answers) about {subject}.\n\n",
        doc_to_text="{question}\nA. {A}\nB. {B}\nC. {C}\nD. {D}\nAnswer:",
        fewshot_answer="letter", primary="acc",
        notes="log-likelihood of ' A'..' D' after the lm-eval prompt (mmlu default task); --num-fewshot 5 "
              "takes the first 5 dev questions of the subject",
    )


def _mmlu_cloze() -> TaskSpec:
    return TaskSpec(
        name="mmlu_cloze", family="mmlu", scoring="cloze", dataset="mmlu", hf_dataset="cais/mmlu", split="test",
        fewshot_split="dev", num_fewshot=0, fewshot_sampler="first_n",
        description="The following are questions (with answers) about {subject}.\n\n",
        doc_to_text="Question: {question}\nAnswer:", fewshot_answer="target", primary="acc",
        notes="log-likelihood of each answer text (lm-eval mmlu_continuation); acc and acc_norm (per byte)",
    )


def _mmlu_mlm() -> TaskSpec:
    return TaskSpec(
        name="mmlu_mlm", family="mmlu", scoring="mlm", dataset="mmlu", hf_dataset="cais/mmlu", split="test",
        fewshot_split="dev", num_fewshot=0, fewshot_sampler="first_n", primary="acc",
        notes="masked-LM generative classifier (mlm_generate.MLMClassifier.score_choices); --model is a masked LM",
    )


def _gsm8k() -> TaskSpec:
    return TaskSpec(
        name="gsm8k", family="gsm8k", scoring="generate", dataset="gsm8k", hf_dataset="openai/gsm8k:main",
        split="test", fewshot_split="train", num_fewshot=5, fewshot_sampler="lm-eval-random",
        doc_to_text="Question: {question}\nAnswer:", fewshot_answer="target",
        stop=("Question:", "</s>", "<|im_end|>"), max_new_tokens=256,
        extractors=("strict", "flexible"), primary="strict",
        notes="lm-eval gsm8k: 5 train examples per question drawn as lm-eval does (random.Random(1234), one "
              "sample() per test question in order); strict '#### N' and flexible last-number extraction",
    )


def _gsm8k_cot() -> TaskSpec:
    return TaskSpec(
        name="gsm8k_cot", family="gsm8k", scoring="generate", dataset="gsm8k", hf_dataset="openai/gsm8k:main",
        split="test", fewshot_split="train", num_fewshot=8, fewshot_sampler="first_n",
        doc_to_text="Q: {question}\nA:", fewshot_answer="cot",
        stop=("Q:", "</s>", "<|im_end|>"), max_new_tokens=256,
        extractors=("answer_is", "flexible"), primary="answer_is",
        notes="8-shot chain of thought in lm-eval's gsm8k-cot format; exemplars = the first 8 GSM8K train "
              "questions, their worked answers with the <<calc>> annotations removed and '#### N' written as "
              "'The answer is N.' (--fewshot-file lm_eval/tasks/gsm8k/gsm8k-cot.yaml uses the Wei et al. "
              "exemplars that lm-eval ships)",
    )


def _gsm8k_chat() -> TaskSpec:
    return TaskSpec(
        name="gsm8k_chat", family="gsm8k", scoring="generate", dataset="gsm8k", hf_dataset="openai/gsm8k:main",
        split="test", fewshot_split=None, num_fewshot=0, doc_to_text="{question}", chat=True,
        chat_instruction=CHAT_INSTRUCTION, stop=(), max_new_tokens=512,
        extractors=("auto", "boxed", "answer_is", "strict", "flexible"), primary="auto",
        notes="zero-shot chat turn for instruct models: the question then the instruction to reason step by step "
              "and put the answer in \\boxed{}; 'auto' reads \\boxed{}, then 'The answer is', then '#### N', "
              "then the last number",
    )


for _f in (_mmlu_letter, _mmlu_cloze, _mmlu_mlm, _gsm8k, _gsm8k_cot, _gsm8k_chat):
    TASKS.register(_f().name)(_f)


def get_task(name: str, **options) -> TaskSpec:
    """The registered task `name` (UnknownNameError lists the known ones), with fields overridden."""
    return TASKS.create(name).with_options(**options)
