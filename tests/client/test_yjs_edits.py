"""The update a device queues for an outlet edit: what the edit's transaction produced."""

from pycrdt import Doc, Map, Text

from fieldsync_client.yjs_edits import NO_CHANGE, edit_update


def test_an_edit_queues_what_its_transaction_produced_without_the_documents_whole_delete_set() -> None:
    phone = Doc()
    fields = phone.get("fields", type=Map)
    for n in range(10):  # values other phones wrote and overwrote: a delete set over ten clients
        other = Doc()
        other.apply_update(phone.get_update())
        other.get("fields", type=Map)["name"] = f"Kedai {n}"
        phone.apply_update(other.get_update())
    server = Doc()
    server.apply_update(phone.get_update())
    before = phone.get_state()

    def edit() -> None:
        fields["name"] = "Kedai Baru"
        phone.get("notes", type=Text).insert(0, "Back door.")

    update = edit_update(phone, edit)
    server.apply_update(update)
    assert server.get("fields", type=Map).to_py() == {"name": "Kedai Baru"}
    assert str(server.get("notes", type=Text)) == "Back door."
    assert server.get_state() == phone.get_state()
    assert len(update) * 2 < len(phone.get_update(before))  # 64 bytes instead of 161


def test_an_edit_that_changes_nothing_queues_an_empty_update() -> None:
    phone = Doc()
    assert edit_update(phone, lambda: None) == NO_CHANGE
    server = Doc()
    server.apply_update(NO_CHANGE)
    assert server.get_state() == phone.get_state()
