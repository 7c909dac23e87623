"""Site membership as the session observer reads it: one query per process for every station, kept a few seconds."""

from __future__ import annotations

import pytest

from smartcharging import sites
from smartcharging.models import Site, SiteMember
from stations.services import station_register

pytestmark = pytest.mark.django_db


def test_membership_of_every_station_is_read_in_one_query_and_a_change_here_counts_at_once(
    django_assert_num_queries,
):
    members = [station_register(identity=f"MEM-{i}")[0] for i in range(3)]
    outsider, _ = station_register(identity="MEM-OUT")
    site = Site.objects.create(name="Depot", capacity_a=100)
    SiteMember.objects.bulk_create([SiteMember(site=site, station=s) for s in members])  # no signal: bulk
    sites.memberships_changed()
    with django_assert_num_queries(1):
        answers = [sites.station_in_a_site(s.pk) for s in [*members, outsider, *members]]
    assert answers == [True, True, True, False, True, True, True]
    # Saved in this process (admin, API): counts at the next session change, not MEMBERSHIP_CACHE_S later.
    SiteMember.objects.create(site=site, station=outsider)
    assert sites.station_in_a_site(outsider.pk) is True
    SiteMember.objects.filter(station=members[0]).get().delete()
    assert sites.station_in_a_site(members[0].pk) is False


def test_membership_read_elsewhere_is_read_again_after_its_time(monkeypatch):
    station, _ = station_register(identity="MEM-LATE")
    sites.memberships_changed()
    assert sites.station_in_a_site(station.pk) is False
    site = Site.objects.create(name="Yard", capacity_a=50)
    SiteMember.objects.bulk_create([SiteMember(site=site, station=station)])  # as another process would: no signal
    assert sites.station_in_a_site(station.pk) is False  # cached
    now = sites.time.monotonic()
    monkeypatch.setattr(sites.time, "monotonic", lambda: now + sites.MEMBERSHIP_CACHE_S + 1)
    assert sites.station_in_a_site(station.pk) is True
