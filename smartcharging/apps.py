from django.apps import AppConfig


class SmartchargingConfig(AppConfig):
    name = "smartcharging"
