from django.apps import AppConfig


class SmartchargingConfig(AppConfig):
    name = "smartcharging"
    verbose_name = "Smart charging"

    def ready(self) -> None:
        from stations.commands import on_command_answered, on_command_sending  # noqa: I001 - one import per line
        from transactions.observers import on_session_change

        # Charging profiles (K-block): every SetChargingProfile from any door is recorded (sites' ones too).
        from . import handlers  # noqa: F401 - registers the OCPP handlers
        from . import profiles, services, sites

        # Lock order: a site's rows before the station's profile rows, on both paths. The recompute locks its site and
        # then sends (the profiles' send hook locks the station's profiles); so the answer path runs the sites' hook
        # (site rows) before the profiles' one, or the two paths deadlock.
        on_command_answered("SetChargingProfile")(sites.profile_on_answered)
        on_command_sending("SetChargingProfile")(profiles.profile_on_set_sending)
        on_command_answered("SetChargingProfile")(profiles.profile_on_set_answered)
        on_command_sending("ClearChargingProfile")(profiles.profile_on_clear_sending)
        on_command_answered("ClearChargingProfile")(profiles.profile_on_clear_answered)
        on_command_sending("GetChargingProfiles", allocates="requestId")(profiles.profiles_on_get_sending)
        on_command_answered("GetChargingProfiles")(profiles.profiles_on_get_answered)
        on_command_answered("GetCompositeSchedule")(services.composite_on_answered)
        on_command_sending("RequestStartTransaction")(profiles.profile_on_remote_start_sending)
        on_command_answered("RequestStartTransaction")(profiles.profile_on_remote_start_answered)

        # Session observers, run in this order: site load management (allocation rows), then, once a session
        # ended, its TxProfiles dropped (profile rows): site rows before profile rows, as on the answer path.
        on_session_change(sites.session_changed, stations=sites.station_in_a_site)
        # A membership saved or deleted in this process (admin, API, shell) counts at once; elsewhere within
        # sites.MEMBERSHIP_CACHE_S.
        from django.db.models.signals import post_delete, post_save

        from .models import SiteMember

        post_save.connect(sites.memberships_changed, sender=SiteMember, dispatch_uid="site-memberships-saved")
        post_delete.connect(sites.memberships_changed, sender=SiteMember, dispatch_uid="site-memberships-deleted")
        on_session_change(profiles.profiles_drop_for_transaction, kinds={"ended"})
