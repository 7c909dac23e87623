from django.apps import AppConfig


class TransactionsConfig(AppConfig):
    name = "transactions"
    verbose_name = "Transactions and authorization"

    def ready(self) -> None:
        from stations.commands import on_command_answered, on_command_failed, on_command_sending  # noqa: I001 - one import per line

        from . import handlers  # noqa: F401 - registers the OCPP handlers
        from . import receivers  # noqa: F401 - local-list sync when tokens change
        from . import customers, reservations, services, tariffs

        on_command_answered("SendLocalList")(services.local_list_on_send_answered)
        on_command_answered("GetLocalListVersion")(services.local_list_on_version_answered)
        on_command_sending("RequestStartTransaction", allocates="remoteStartId")(services.remote_start_on_sending)
        on_command_sending("ReserveNow", allocates="id")(reservations.reservation_on_sending)
        on_command_answered("ReserveNow")(reservations.reservation_on_reserve_answered)
        on_command_failed("ReserveNow")(reservations.reservation_on_reserve_failed)
        on_command_answered("CancelReservation")(reservations.reservation_on_cancel_answered)
        on_command_answered("GetTransactionStatus")(services.transaction_status_on_answered)
        on_command_sending("CustomerInformation", allocates="requestId")(customers.customer_information_on_sending)
        on_command_answered("CustomerInformation")(customers.customer_information_on_answered)
        on_command_failed("CustomerInformation")(customers.customer_information_on_failed)
        on_command_answered("CostUpdated")(tariffs.cost_updated_on_answered)
