"""SQL views that give the recommender a fixed shape over the host's own tables.

The host keeps its User and Business tables as they are; ``XO_RECOMMENDER["USER_FIELDS"]``
and ``["BUSINESS_FIELDS"]`` say which host field holds each thing the recommender needs.
From that mapping this module builds one ``CREATE VIEW`` per source, for PostgreSQL and
SQLite. Term lists (interests, categories, tags) may be a JSON list field or a
many-to-many to a tag/category model; either way the view yields a JSON array of strings.

The same resolution code serves the migration, the ``recommender_views`` command and
the system checks, so a mapping the checks accept is exactly one the views can build.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.db import migrations, models

from xo_recommender.conf import BUSINESS_MODEL_SETTING, USER_MODEL_SETTING
from xo_recommender.conf import settings as rec_settings

USER_VIEW = "xo_recommender_user_source"
BUSINESS_VIEW = "xo_recommender_business_source"

TERMS, NUMBER, TEXT, BOOLEAN = "terms", "number", "text", "boolean"

#: Each recommender field, its kind, and whether a host may leave it unmapped (None).
USER_SCHEMA: dict[str, tuple[str, bool]] = {
    "interests": (TERMS, True),
    "latitude": (NUMBER, True),
    "longitude": (NUMBER, True),
    "is_active": (BOOLEAN, True),
}
BUSINESS_SCHEMA: dict[str, tuple[str, bool]] = {
    "name": (TEXT, False),
    "categories": (TERMS, True),
    "tags": (TERMS, True),
    "latitude": (NUMBER, True),
    "longitude": (NUMBER, True),
    "popularity": (NUMBER, True),
    "rating": (NUMBER, True),
    "is_active": (BOOLEAN, True),
}

_NUMBER_TYPES = {
    "FloatField", "DecimalField", "IntegerField", "BigIntegerField", "SmallIntegerField",
    "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField",
}
_TEXT_TYPES = {"CharField", "TextField", "SlugField", "EmailField", "URLField"}
_BOOLEAN_TYPES = {"BooleanField", "NullBooleanField"}


class SourceColumnsMissing(Exception):
    """A mapped column is in the models but not yet in the database (``migrate`` first)."""


class SourceMappingError(Exception):
    """The configured mapping cannot be turned into a view; carries what to change."""

    def __init__(self, message: str, hint: str, check_id: str) -> None:
        super().__init__(message)
        self.hint = hint
        self.check_id = check_id


class SourceMappingErrors(SourceMappingError):
    """Several fields of one mapping are wrong: each is in ``problems`` (``manage.py
    check`` lists them all at once), the first one's message and hint carried as well."""

    def __init__(self, problems: list[SourceMappingError]) -> None:
        first = problems[0]
        super().__init__(f"{first} (and {len(problems) - 1} more: run `manage.py check`)",
                         first.hint, first.check_id)
        self.problems = problems


@dataclass(frozen=True)
class ViewSpec:
    """One view to install: its name, its SELECT, and a signature of that SELECT."""

    name: str
    select_sql: str
    #: ``(table, column)`` pairs the SELECT reads, to say which is missing before running it.
    reads: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def signature(self) -> str:
        return hashlib.sha256(self.select_sql.encode()).hexdigest()


def resolve_model(apps: Any, setting: str, label: str) -> Any:
    """Return the host model class named by ``label``, or raise ``SourceMappingError``."""
    if not label:
        raise SourceMappingError(
            f"{setting} is not set.",
            hint=f'Add {setting} = "app_label.ModelName" to your settings.',
            check_id="xo_recommender.E001",
        )
    try:
        app_label, model_name = label.split(".")
        return apps.get_model(app_label, model_name)
    except (ValueError, LookupError, AttributeError):  # AttributeError: not text at all
        raise SourceMappingError(
            f"{setting} = {label!r} does not name an installed model.",
            hint='Use the form "app_label.ModelName" of a model in INSTALLED_APPS.',
            check_id="xo_recommender.E002",
        ) from None


def _kind_of(field: Any) -> str | None:
    if isinstance(field, models.ManyToManyField):  # forward only; not a reverse relation
        return TERMS
    internal = field.get_internal_type()
    if internal == "JSONField":
        return TERMS
    if internal in _NUMBER_TYPES:
        return NUMBER
    if internal in _TEXT_TYPES:
        return TEXT
    if internal in _BOOLEAN_TYPES:
        return BOOLEAN
    return None


class _Builder:
    """Builds the column expressions of one view for one database vendor."""

    def __init__(self, connection: Any, model: Any, setting_key: str) -> None:
        self.q = connection.ops.quote_name
        self.postgres = connection.vendor == "postgresql"
        self.model = model
        self.setting_key = setting_key
        self.reads: list[tuple[str, str]] = [(model._meta.db_table, model._meta.pk.column)]

    def column(self, name: str, kind: str, optional: bool, host_name: str | None) -> str:
        if host_name is None:
            if not optional:
                raise SourceMappingError(
                    f"{self.setting_key}[{name!r}] is required.",
                    hint=f"Map {name!r} to a field of {self.model._meta.label}.",
                    check_id="xo_recommender.E003",
                )
            return f"{self.default(kind)} AS {self.q(name)}"
        field_name, _, label_field = host_name.partition("__")
        field = self.field(name, field_name)
        found = _kind_of(field)
        if found != kind:
            expected = {
                TERMS: "a JSONField holding a list, or a ManyToManyField",
                NUMBER: "a numeric field (FloatField, DecimalField, IntegerField)",
                TEXT: "a CharField or TextField",
                BOOLEAN: "a BooleanField",
            }[kind]
            raise SourceMappingError(
                f"{self.setting_key}[{name!r}] names {self.model._meta.label}.{field_name}, "
                f"a {field.get_internal_type()}; the recommender needs {expected}.",
                hint=f"Point {self.setting_key}[{name!r}] at a field of that type, or None.",
                check_id="xo_recommender.E004",
            )
        if kind == TERMS and isinstance(field, models.ManyToManyField):
            return f"{self.m2m_terms(name, field, label_field or 'name')} AS {self.q(name)}"
        self.reads.append((self.model._meta.db_table, field.column))
        col = f"h.{self.q(field.column)}"
        if kind == TERMS:
            if self.postgres:
                expr = (
                    f"CASE WHEN jsonb_typeof({col}::jsonb) = 'array' "
                    f"THEN {col}::jsonb ELSE '[]'::jsonb END"
                )
            else:
                expr = f"CASE WHEN json_type({col}) = 'array' THEN json({col}) ELSE '[]' END"
        elif kind == NUMBER:
            expr = f"CAST({col} AS {'double precision' if self.postgres else 'REAL'})"
        elif kind == BOOLEAN:
            expr = f"COALESCE({col}, {self.default(BOOLEAN)})"
        else:
            expr = col
        return f"{expr} AS {self.q(name)}"

    def field(self, name: str, field_name: str) -> Any:
        from django.core.exceptions import FieldDoesNotExist

        try:
            return self.model._meta.get_field(field_name)
        except FieldDoesNotExist:
            raise SourceMappingError(
                f"{self.setting_key}[{name!r}] names {field_name!r}, which "
                f"{self.model._meta.label} does not have.",
                hint=f"Set {self.setting_key}[{name!r}] to one of its field names, or None.",
                check_id="xo_recommender.E003",
            ) from None

    def default(self, kind: str) -> str:
        if kind == TERMS:
            return "'[]'::jsonb" if self.postgres else "'[]'"
        if kind == BOOLEAN:
            return "TRUE" if self.postgres else "1"
        return "NULL"

    def m2m_terms(self, name: str, field: Any, label_field: str) -> str:
        q = self.q
        through = field.remote_field.through._meta.db_table
        target = field.related_model
        try:
            label = target._meta.get_field(label_field)
        except Exception:
            raise SourceMappingError(
                f"{self.setting_key}[{name!r}]: {target._meta.label} has no field "
                f"{label_field!r} to use as the term label.",
                hint=f'Use "{field.name}__<label field>", e.g. "{field.name}__slug".',
                check_id="xo_recommender.E003",
            ) from None
        join = (
            f"FROM {q(through)} m JOIN {q(target._meta.db_table)} t "
            f"ON t.{q(target._meta.pk.column)} = m.{q(field.m2m_reverse_name())} "
            f"WHERE m.{q(field.m2m_column_name())} = h.{q(self.model._meta.pk.column)}"
        )
        self.reads += [(through, field.m2m_column_name()), (through, field.m2m_reverse_name()),
                       (target._meta.db_table, label.column)]
        lab = f"t.{q(label.column)}"
        if self.postgres:
            return f"COALESCE((SELECT jsonb_agg({lab} ORDER BY {lab}) {join}), '[]'::jsonb)"
        return f"(SELECT json_group_array(x.term) FROM (SELECT {lab} AS term {join} ORDER BY 1) x)"


def _view(apps: Any, connection: Any, *, view: str, model_setting: str, label: str,
          fields_key: str, mapping: dict[str, str | None],
          schema: dict[str, tuple[str, bool]]) -> ViewSpec:
    model = resolve_model(apps, model_setting, label)
    setting_key = f'XO_RECOMMENDER["{fields_key}"]'
    if not isinstance(mapping, dict):
        raise SourceMappingError(
            f"{setting_key} must be a dict of recommender field -> host field name, not "
            f"{type(mapping).__name__}.",
            hint=f'For example {{"{next(iter(schema))}": "my_field"}}; only the names that '
            "differ from the defaults are needed.",
            check_id="xo_recommender.E005",
        )
    unknown = [str(k) for k in sorted(set(mapping) - set(schema), key=str)]
    if unknown:
        raise SourceMappingError(
            f"{setting_key} has unknown keys: {', '.join(unknown)}.",
            hint=f"Known keys: {', '.join(schema)}.",
            check_id="xo_recommender.E005",
        )
    builder = _Builder(connection, model, setting_key)
    q = connection.ops.quote_name
    columns = [f"h.{q(model._meta.pk.column)} AS {q('id')}"]
    problems: list[SourceMappingError] = []
    for name, (kind, optional) in schema.items():
        host_name = mapping.get(name)
        if host_name is not None and (not isinstance(host_name, str) or not host_name):
            problems.append(SourceMappingError(
                f"{setting_key}[{name!r}] must be a field name of {model._meta.label} (text) "
                f"or None, not {host_name!r}.",
                hint=f"Name the field of {model._meta.label} that holds {name}, or None if "
                "it has none.",
                check_id="xo_recommender.E003",
            ))
            continue
        try:
            columns.append(builder.column(name, kind, optional, host_name))
        except SourceMappingError as exc:  # the others are checked too: one report
            problems.append(exc)
    if len(problems) > 1:
        raise SourceMappingErrors(problems)
    if problems:
        raise problems[0]
    select = f"SELECT {', '.join(columns)} FROM {q(model._meta.db_table)} h"
    return ViewSpec(view, select, tuple(builder.reads))


def user_view(apps: Any, connection: Any) -> ViewSpec:
    return _view(apps, connection, view=USER_VIEW, model_setting=USER_MODEL_SETTING,
                 label=rec_settings.user_model, fields_key="USER_FIELDS",
                 mapping=rec_settings.USER_FIELDS, schema=USER_SCHEMA)


def business_view(apps: Any, connection: Any) -> ViewSpec:
    return _view(apps, connection, view=BUSINESS_VIEW, model_setting=BUSINESS_MODEL_SETTING,
                 label=rec_settings.business_model, fields_key="BUSINESS_FIELDS",
                 mapping=rec_settings.BUSINESS_FIELDS, schema=BUSINESS_SCHEMA)


def view_specs(apps: Any, connection: Any) -> list[ViewSpec]:
    """Both views, or ``SourceMappingError`` for the first problem in the mapping."""
    return [user_view(apps, connection), business_view(apps, connection)]


#: The migration that installs the views; while it is unapplied the views stay away.
VIEWS_MIGRATION = ("xo_recommender", "0002_source_views")


def views_migration_applied(connection: Any) -> bool:
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connection)
    return recorder.has_table() and VIEWS_MIGRATION in recorder.applied_migrations()


def drop_views(connection: Any, source_view_model: Any = None) -> None:
    with connection.cursor() as cursor:
        for name in (USER_VIEW, BUSINESS_VIEW):
            cursor.execute(f"DROP VIEW IF EXISTS {connection.ops.quote_name(name)}")
    if source_view_model is not None:
        source_view_model.objects.using(connection.alias).all().delete()


def missing_columns(connection: Any, specs: list[ViewSpec]) -> list[str]:
    """``table.column`` names the views would read that the database lacks (no migrate yet)."""
    tables = set(connection.introspection.table_names())
    columns: dict[str, set[str]] = {}
    missing = []
    with connection.cursor() as cursor:
        for spec in specs:
            for table, column in spec.reads:
                if table not in columns:
                    columns[table] = ({c.name for c in connection.introspection
                                       .get_table_description(cursor, table)}
                                      if table in tables else set())
                if column not in columns[table] and f"{table}.{column}" not in missing:
                    missing.append(f"{table}.{column}")
    return missing


def create_views(connection: Any, apps: Any, source_view_model: Any) -> list[ViewSpec]:
    """(Re)create both views from the current mapping and record their signatures.

    Raises ``SourceColumnsMissing`` (nothing changed) when a mapped column is not in the
    database yet, i.e. the host's migration adding it has not run.
    """
    specs = view_specs(apps, connection)
    missing = missing_columns(connection, specs)
    if missing:
        raise SourceColumnsMissing(
            f"Column {', '.join(missing)} does not exist in the database yet: run "
            "`manage.py migrate` first (it also rebuilds the views).")
    drop_views(connection)
    with connection.cursor() as cursor:
        for spec in specs:
            name = connection.ops.quote_name(spec.name)
            cursor.execute(f"CREATE VIEW {name} AS {spec.select_sql}")
    manager = source_view_model.objects.using(connection.alias)
    for spec in specs:
        manager.update_or_create(name=spec.name, defaults={"signature": spec.signature})
    return specs


def view_status(connection: Any, apps: Any, source_view_model: Any) -> dict[str, str]:
    """``{view name: "ok" | "missing" | "stale"}`` for the installed views."""
    specs = view_specs(apps, connection)
    existing = set(connection.introspection.table_names(include_views=True))
    recorded = dict(
        source_view_model.objects.using(connection.alias).values_list("name", "signature")
    )
    status = {}
    for spec in specs:
        if spec.name not in existing:
            status[spec.name] = "missing"
        elif recorded.get(spec.name) != spec.signature:
            status[spec.name] = "stale"
        else:
            status[spec.name] = "ok"
    return status


class CreateSourceViews(migrations.operations.base.Operation):
    """Migration operation: create the views from the mapping, as of this migration.

    It builds from the migration state's models, so the columns it reads exist at this
    point of the plan. When a mapped field is added to the host by a migration that runs
    later, the views are created after ``migrate`` instead (``apps.py``'s
    ``post_migrate`` receiver), since they cannot be built yet.
    """

    reversible = True
    reduces_to_sql = False

    def state_forwards(self, app_label: str, state: Any) -> None:
        pass

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        connection = schema_editor.connection
        source_view = to_state.apps.get_model("xo_recommender", "SourceView")
        try:
            view_specs(to_state.apps, connection)
        except SourceMappingError:
            return  # not buildable yet: post_migrate creates them (or the checks explain)
        create_views(connection, to_state.apps, source_view)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        source_view = from_state.apps.get_model("xo_recommender", "SourceView")
        drop_views(schema_editor.connection, source_view)

    def describe(self) -> str:
        return "Create the recommender's SQL views over the host User and Business tables"
