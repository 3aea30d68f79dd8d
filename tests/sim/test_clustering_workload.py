"""The clustering workload (ring/verify/clustering_workload.py): clean on the production code, failed
by the canary `range_tombstone_one_sstable`, and never vacuous."""
from ring.verify.clustering_workload import ClusteringWorkload, check_clustering, run_clustering_seed


def test_the_production_code_matches_the_model():
    result = ClusteringWorkload(1).run()
    report = check_clustering(result)
    assert report.ok, str(report)
    counts = result.counts
    assert counts["read"] >= 30 and counts["range_delete"] >= 20 and counts["flush"] >= 15, counts
    assert sum(len(expected) for _, _, expected, _ in result.reads) >= 100   # the reads saw rows


def test_the_range_tombstone_canary_is_caught_as_resurrected_rows():
    _, report, failed = run_clustering_seed(1, "range_tombstone_one_sstable")
    assert failed == {"rows"}
    assert all("resurrected c=[]" not in problem for problem in report.problems), str(report)


def test_the_same_seed_gives_the_same_trace():
    assert ClusteringWorkload(2).run(60).digest == ClusteringWorkload(2).run(60).digest
