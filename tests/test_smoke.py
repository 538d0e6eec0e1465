def test_enqueue_and_wait(clean_lab):
    handle = clean_lab.enqueue("sleep", seconds=0.05)
    assert clean_lab.wait(handle, timeout=10)
    assert [e.kind for e in clean_lab.events()] == ["enqueued", "executing", "complete"]
