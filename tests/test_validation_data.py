"""Inputs are checked before the first step, and a bad one is one error naming the file (and field):
downstream data is read and validated by `execute` before the vocabulary and pretraining, and corpus
problems (binary, non-UTF-8, empty, missing directory) name the file."""

from __future__ import annotations

import pytest

from t5explore import cli
from t5explore.config import ConfigError
from t5explore.data.corpus import CorpusError, jsonl_files, text_files
from t5explore.data.tasks import TaskDataError, local_files
from t5explore.run_config import Finetune
from t5explore.train.finetune import prepare_tasks
from t5explore.train.run import execute

HEADER = "index\tsentence1\tsentence2\tlabel\n"


pytestmark = pytest.mark.usefixtures("clean_gin")


def rte_dir(tmp_path, train: str = HEADER + "0\ta\tb\tentailment\n", dev: str = HEADER + "0\tc\td\tnot_entailment\n"):
    folder = tmp_path / "data" / "glue" / "RTE"
    folder.mkdir(parents=True)
    if train is not None:
        (folder / "train.tsv").write_text(train)
    if dev is not None:
        (folder / "dev.tsv").write_text(dev)
    return tmp_path / "data"


def run_rte(tmp_path, data_dir, tasks="['glue_rte']"):
    cache = tmp_path / "cache"
    run_dir = tmp_path / "run"
    with pytest.raises((TaskDataError, ConfigError)) as e:
        execute(
            run_dir,
            ["gin/runs/tiny_cpu.gin"],
            [f"Finetune.tasks = {tasks}", f"Finetune.data_dir = '{data_dir}'", f"Experiment.cache_dir = '{cache}'"],
        )
    # nothing was built or trained: no vocabulary, no checkpoints, no metrics
    assert not cache.exists() and not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.jsonl").exists()
    return str(e.value)


def test_a_tsv_missing_its_label_column_stops_the_run_before_pretraining(tmp_path):
    data = rte_dir(tmp_path, train="index\tsentence1\tsentence2\n0\ta\tb\n")
    assert run_rte(tmp_path, data) == (
        f"{data}/glue/RTE/train.tsv:1: header lacks column(s) ['label']; it has ['index', 'sentence1', 'sentence2']"
    )


def test_missing_file_empty_split_and_unknown_task_are_caught_up_front(tmp_path):
    data = rte_dir(tmp_path / "a", dev=None)
    assert run_rte(tmp_path / "a", data).startswith(f"task glue_rte: {data}/glue/RTE/dev.tsv: no such file")
    data = rte_dir(tmp_path / "b", dev=HEADER)
    assert run_rte(tmp_path / "b", data) == f"{data}/glue/RTE/dev.tsv: no examples (only a header line)"
    message = run_rte(tmp_path / "c", tmp_path, tasks="['glue_mnli']")
    assert message.startswith("gin binding Finetune.tasks: unknown downstream task 'glue_mnli'; known tasks:")


def test_prepared_tasks_hand_their_examples_on_without_reading_again(tmp_path, monkeypatch):
    data = rte_dir(tmp_path)
    tasks = prepare_tasks(Finetune(tasks=["glue_rte"], data_dir=str(data)))

    def no_second_read(*args, **kwargs):
        raise AssertionError("read twice")

    monkeypatch.setattr(local_files, "read_glue_tsv", no_second_read)
    train = tasks["glue_rte"].examples("train", str(data))
    assert [e.targets for e in train] == ["entailment"]
    assert tasks["glue_rte"].examples("validation", str(data))[0].inputs == "rte sentence1: c sentence2: d"


def test_empty_jsonl_and_non_utf8_task_files_name_the_file(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text("")
    with pytest.raises(TaskDataError, match=f"^{path}: no examples"):
        local_files.read_jsonl(path, {"text": str})
    path.write_bytes(b'{"text": "caf\xe9"}\n')
    with pytest.raises(TaskDataError, match=f"^{path}: not valid UTF-8 at byte 13"):
        local_files.read_jsonl(path, {"text": str})


# ------------------------------------------------------------------------------------------ corpora


def corpus_errors(tmp_path):
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02 binary")
    (tmp_path / "latin.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "bin.jsonl").write_bytes(b'{"text": "ok"}\n\xff\xfe\x00\n')
    (tmp_path / "empty.jsonl").write_text("\n")
    return {
        "bin.txt": f"{tmp_path}/bin.txt: a binary file (NUL byte at offset 0), not UTF-8 text",
        "latin.txt": f"{tmp_path}/latin.txt: not valid UTF-8 at byte 3",
        "empty.txt": f"{tmp_path}/empty.txt: empty corpus: the file holds no text (text_files)",
        "bin.jsonl": f"{tmp_path}/bin.jsonl:2: not valid UTF-8 at byte 0 of the line (a binary file?)",
        "empty.jsonl": f"{tmp_path}/empty.jsonl: empty corpus: the file holds no text (jsonl_files)",
    }


def test_corpus_file_errors_are_one_line_naming_the_file(tmp_path):
    for name, message in corpus_errors(tmp_path).items():
        corpus = (jsonl_files if name.endswith(".jsonl") else text_files)(pattern=str(tmp_path / name))
        with pytest.raises(CorpusError) as e:
            list(corpus.documents())
        assert str(e.value) == message


def test_several_empty_files_and_missing_directories(tmp_path):
    (tmp_path / "a.txt").write_text("")
    (tmp_path / "b.txt").write_text(" \n")
    with pytest.raises(CorpusError, match=r"a\.txt \(and 1 more files\): empty corpus"):
        list(text_files(pattern=str(tmp_path / "*.txt")).documents())
    with pytest.raises(CorpusError, match=f"^{tmp_path}/nowhere: no such directory \\(text_files.directory\\)"):
        text_files(pattern="*.txt", directory=str(tmp_path / "nowhere"))
    with pytest.raises(CorpusError, match=f"^{tmp_path}/nowhere: no such directory \\(jsonl_files.pattern"):
        jsonl_files(pattern=str(tmp_path / "nowhere" / "*.jsonl"))


def test_cli_corpus_error_is_one_line_and_exit_2(tmp_path, capsys):
    corpus_errors(tmp_path)
    code = cli.main(
        [
            "train",
            "--gin_file=gin/runs/tiny_cpu.gin",
            "--gin.Pretrain.corpus=@text_files()",
            f"--gin.text_files.pattern='{tmp_path}/bin.txt'",
            "--gin.Finetune.tasks=[]",
            f"--gin.Experiment.cache_dir='{tmp_path}/cache'",
            f"--run_dir={tmp_path}/run",
        ]
    )
    err = capsys.readouterr().err.splitlines()
    assert code == 2
    assert err[-1] == (
        f"t5explore: input error: {tmp_path}/bin.txt: a binary file (NUL byte at offset 0), not UTF-8 text"
    )
    assert not any("Traceback" in line for line in err)
