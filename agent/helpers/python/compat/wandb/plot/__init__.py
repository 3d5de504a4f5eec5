"""``wandb.plot``: chart presets. A chart made from a Table is kept as that table's file when
logged; the others (computed curves, confusion matrices) are accepted and ignored."""

from wandb.sdk.data_types.base_types.wb_value import Media


class CustomChart(Media):
    _log_type = "custom-chart"

    def __init__(self, kind, table=None, fields=None, title=None):
        self.kind = kind
        self.table = table
        self.fields = fields or {}
        self.title = title

    def _save(self, run, key, step):
        if self.table is None:
            return None
        ref = self.table._save(run, key, step)
        ref["_type"] = "custom-chart"
        ref["chart"] = self.kind
        return ref


def _table_chart(kind):
    def make(table, *fields, title=None, **kwargs):
        return CustomChart(kind, table, dict(zip(("x", "y", "z"), fields)), title)

    make.__name__ = kind
    return make


line = _table_chart("line")
scatter = _table_chart("scatter")
bar = _table_chart("bar")


def histogram(table, value, title=None, split_table=False):
    return CustomChart("histogram", table, {"value": value}, title)


def plot_table(vega_spec_name, data_table, fields, string_fields=None, split_table=False):
    return CustomChart(vega_spec_name, data_table, fields)


def _ignored(kind):
    def make(*args, **kwargs):
        return CustomChart(kind)

    make.__name__ = kind
    return make


line_series = _ignored("line_series")
confusion_matrix = _ignored("confusion_matrix")
pr_curve = _ignored("pr_curve")
roc_curve = _ignored("roc_curve")
