"""On PostgreSQL (the production mode), the database itself refuses UPDATE, DELETE and
TRUNCATE on the audit table, whoever sends them: a trigger raises. Nothing on SQLite
(the embedded mode keeps the ORM guard, the keyed chain and the checkpoints).

Only the table's owner (or a superuser) can drop or disable the trigger; run the portal
as a role that does not own the tables to make that a separate privilege
(docs/operations.md, "The audit table on PostgreSQL").
"""

from __future__ import annotations

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION grading_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'grading_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER grading_audit_no_update_delete
    BEFORE UPDATE OR DELETE ON grading_auditevent
    FOR EACH ROW EXECUTE FUNCTION grading_audit_append_only();
CREATE TRIGGER grading_audit_no_truncate
    BEFORE TRUNCATE ON grading_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION grading_audit_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS grading_audit_no_truncate ON grading_auditevent;
DROP TRIGGER IF EXISTS grading_audit_no_update_delete ON grading_auditevent;
DROP FUNCTION IF EXISTS grading_audit_append_only();
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # no placeholders: % is literal

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("grading", "0003_trust_audit_keyed_chain"),
    ]

    operations = [
        migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP), elidable=False),
    ]
