from crdt import SharedDocument

def test_x():
    assert SharedDocument()
