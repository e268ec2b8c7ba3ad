"""bench_scale's CPU accounting (a worker titled `ray::IDLE` counts to what it last ran) and its memory table by stage."""
from __future__ import annotations

from benchmarks.bench_scale import WorkerSampler


def test_an_idle_titled_worker_counts_to_its_last_task() -> None:
    sampler = WorkerSampler()
    sampler.scan_pid = 10
    sampler._count_cpu(10, b"python\0-m\0jobs", 1.0)
    sampler._count_cpu(11, b"ray::IDLE\0", 0.5)  # starting: nothing ran yet
    sampler._count_cpu(11, b"ray::MapBatches(extract_paths)\0", 2.5)
    sampler._count_cpu(11, b"ray::IDLE\0", 6.0)  # Ray Data's streaming task, titled idle
    sampler._count_cpu(11, b"ray::align_chunk_rows\0", 7.0)
    sampler._count_cpu(11, b"ray::IDLE\0", 1.0)  # a new process with the same pid
    sampler._count_cpu(12, b"/usr/bin/raylet\0", 3.0)
    assert sampler.cpu_by_role == {"driver": 1.0, "ray::IDLE": 1.5, "ray::MapBatches(extract_paths)": 5.5,
                                   "ray::align_chunk_rows": 1.0, "ray services": 3.0}


def test_the_largest_worker_is_named_by_its_task_when_its_peak_was_seen() -> None:
    sampler = WorkerSampler()
    sampler._count_cpu(11, b"ray::_read_chunk\0", 1.0)
    sampler._note_peak(11, b"ray::IDLE\0", 2000)  # idle since the read: the read is named
    sampler._note_peak(12, b"ray::align_chunk_rows\0", 1500)  # smaller: not the largest
    assert (sampler.peak_one_kb, sampler.peak_one_role) == (2000, "ray::_read_chunk")
    sampler._note_peak(12, b"ray::align_chunk_rows\0", 2500)
    assert (sampler.peak_one_kb, sampler.peak_one_role) == (2500, "ray::align_chunk_rows")


def test_the_memory_by_stage_takes_each_stages_largest_sample() -> None:
    from benchmarks.bench_scale import by_stage

    samples = [{"t": t, "RssAnon": anon, "RssShmem": shm, "RssFile": 100.0, "VmHWM": 0.0, "cores": cores}
               for t, anon, shm, cores in [(0.5, 400, 0, 0.5), (1.5, 700, 0, 1.5), (2.5, 500, 50, 2.0),
                                           (3.5, 600, 50, 1.0), (4.5, 450, 0, 1.0)]]
    rows = by_stage(samples, [(1.0, "keypoint candidates"), (2.0, "pixel check"), (4.0, "report")])
    assert [(r["stage"], r["RssAnon"], r["RssShmem"], r["resident"]) for r in rows] == [
        ("keypoint candidates", 700, 0, 800), ("pixel check", 600, 50, 750), ("report", 450, 0, 550)]
    assert [r["seconds"] for r in rows] == [1.0, 2.0, 0.5]
    assert [r["cores_busy"] for r in rows] == [1.5, 1.5, 1.0]
