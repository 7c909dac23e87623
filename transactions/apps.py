from django.apps import AppConfig


class TransactionsConfig(AppConfig):
    name = "transactions"
    verbose_name = "Transactions and authorization"

    def ready(self) -> None:
        from . import handlers  # noqa: F401 - registers the OCPP handlers
