"""Settings: every docs/rules.md#assumptions assumption as a validated option, readable from and writable to YAML."""

from datetime import datetime, timedelta, timezone

import pytest

from cohortlab import SyncSettings
from cohortlab.settings import Pause
from cohortlab.errors import SettingsError
from cohortlab.times import format_duration, parse_duration

UTC = timezone.utc


def test_defaults_follow_spec_section_1():
    s = SyncSettings()
    assert s.fallback == "data"
    assert s.event_identity_cutoff == datetime(2026, 1, 15, tzinfo=UTC)
    assert s.protection == "only_update"
    assert s.attribute_template == "{cohort_name}"
    assert s.cadence == timedelta(minutes=15)
    assert s.apply_order == "removes_then_adds"
    assert s.snapshot_ttl == timedelta(days=3)
    assert s.refresh_clears_stale is True
    assert s.sync_type == "dynamic"
    assert s.start is None and s.pauses == []
    assert s.eit_at(datetime(2030, 1, 1)) == "customer_id"  # mParticle's default EIT throughout


@pytest.mark.parametrize(
    "text,expected",
    [("15m", timedelta(minutes=15)), ("3d", timedelta(days=3)), ("1h30m", timedelta(minutes=90)),
     ("PT15M", timedelta(minutes=15)), ("P3D", timedelta(days=3)), (900, timedelta(minutes=15)),
     ("900", timedelta(minutes=15)), (timedelta(hours=2), timedelta(hours=2))],
)
def test_durations(text, expected):
    assert SyncSettings(cadence=text).cadence == expected
    assert parse_duration(format_duration(expected)) == expected


def test_datetimes_are_utc_and_naive_means_utc():
    s = SyncSettings(start="2026-03-01T12:00:00", event_identity_cutoff="2026-01-15T02:00:00+02:00")
    assert s.start == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert s.event_identity_cutoff == datetime(2026, 1, 15, tzinfo=UTC)
    assert SyncSettings(event_identity_cutoff=None).event_identity_cutoff is None


def test_yaml_round_trip(tmp_path):
    s = SyncSettings(
        fallback="strict",
        event_identity_cutoff=None,
        protection="create_and_update",
        attribute_template="Mixpanel - {cohort_name}",
        cadence="30m",
        apply_order="adds_then_removes",
        snapshot_ttl="2d12h",
        refresh_clears_stale=False,
        sync_type="one_time",
        start="2026-03-01T00:00:00Z",
        pauses=[{"start": "2026-03-02", "end": "2026-03-06T06:30:00Z"}],
        eit_timeline=[{"since": None, "eit": "customer_id"}, {"since": "2026-02-01", "eit": "mparticle_id"}],
    )
    path = tmp_path / "settings.yaml"
    s.to_yaml(path)
    text = path.read_text()
    assert "cadence: 30m" in text and "snapshot_ttl: 2d12h" in text and "'2026-03-06T06:30:00Z'" in text
    assert SyncSettings.from_yaml(path) == s
    assert SyncSettings.from_yaml(path).to_yaml() == text


def test_empty_yaml_file_means_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert SyncSettings.from_yaml(path) == SyncSettings()


def test_unknown_option_is_an_error_naming_it(tmp_path):
    with pytest.raises(SettingsError, match=r"^invalid settings: cadance: unknown option \(did you mean 'cadence'\? "
                                            r"known options: fallback"):
        SyncSettings(cadance="15m")  # a CohortlabError, not pydantic's ValidationError
    # a key inside a pause lists a pause's options, not the settings'; an unrelated key suggests nothing
    with pytest.raises(SettingsError, match=r"^invalid settings: pauses\.0\.ends_wth: unknown option \(did you mean "
                                            r"'ends_with'\? known options: start, end, ends_with\)$"):
        SyncSettings(pauses=[{"start": "2026-03-02", "end": "2026-03-03", "ends_wth": "resume"}])
    with pytest.raises(SettingsError, match=r"^invalid settings: colour: unknown option \(known options: fallback"):
        SyncSettings(colour="blue")
    # a validator's own message, without pydantic's "Value error, " before it
    with pytest.raises(SettingsError, match=r"^invalid settings: attribute_template: attribute_template '\{x\}' is not"):
        SyncSettings(attribute_template="{x}")
    with pytest.raises(SettingsError, match=r"^invalid settings: fallback: Input should be 'data' or 'strict' "
                                            r"\(got 'strick'\)$"):
        SyncSettings(fallback="strick")
    with pytest.raises(ValueError):  # still the ValueError it was
        Pause(start="2026-03-02", end="not a time")
    path = tmp_path / "s.yaml"
    path.write_text("cadance: 15m\n")
    with pytest.raises(SettingsError, match=r"s.yaml: invalid settings: cadance: unknown option \(did you mean"):
        SyncSettings.from_yaml(path)


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("fallback", "sometimes", "fallback: Input should be 'data' or 'strict'"),
        ("protection", "only", "protection: Input should be 'only_update' or 'create_and_update'"),
        ("apply_order", "random", "apply_order: Input should be"),
        ("sync_type", "hourly", "sync_type: Input should be 'dynamic' or 'one_time'"),
        ("cadence", "soon", "cadence:"),
        ("cadence", "0s", "cadence must be positive"),
        ("snapshot_ttl", -5, "snapshot_ttl must be positive"),
        ("refresh_clears_stale", "perhaps", "refresh_clears_stale:"),
        ("attribute_template", "{cohort}", "only the placeholder {cohort_name} is allowed"),
        ("start", "yesterday", "start:"),
        ("pauses", [{"start": "2026-03-02", "end": "2026-03-01"}], "is not after its start"),
        ("eit_timeline", [{"since": None, "eit": "phone"}], "eit_timeline.0.eit"),
    ],
)
def test_bad_values_are_clear_errors(option, value, message):
    with pytest.raises(SettingsError, match=message):
        SyncSettings.coerce({option: value})


def test_bad_settings_files(tmp_path):
    with pytest.raises(SettingsError, match="cannot read settings file"):
        SyncSettings.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cadence: [15m\n")
    with pytest.raises(SettingsError, match="not valid YAML"):
        SyncSettings.from_yaml(bad)
    bad.write_text("- 15m\n")
    with pytest.raises(SettingsError, match="expected a mapping"):
        SyncSettings.from_yaml(bad)


def test_attribute_name_is_rendered_and_limited_to_256_characters():
    assert SyncSettings().attribute_name("Power Users") == "Power Users"
    s = SyncSettings(attribute_template="Mixpanel - {cohort_name}")
    assert s.attribute_name("Power Users") == "Mixpanel - Power Users"
    assert len(SyncSettings().attribute_name("x" * 256)) == 256
    with pytest.raises(SettingsError, match="is 257 characters; mParticle allows at most 256"):
        SyncSettings().attribute_name("x" * 257)
    with pytest.raises(SettingsError, match="is 257 characters"):
        s.attribute_name("x" * 246)  # 11 + 246
    # the error quotes the name's start: an email in it is masked (a report shows the error)
    with pytest.raises(SettingsError, match=r"^attribute name for cohort 'Leads of <email> x+'\.\.\. is 281") as e:
        SyncSettings().attribute_name("Leads of alice.qa@example.com " + "x" * 251)
    assert "alice" not in str(e.value)


def test_eit_timeline():
    s = SyncSettings(eit_timeline=[{"since": "2026-02-01", "eit": "mparticle_id"}, {"since": None, "eit": "email"}])
    assert [p.eit for p in s.eit_timeline] == ["email", "mparticle_id"]  # sorted
    assert s.eit_at(datetime(2026, 1, 31, 23, 59)) == "email"
    assert s.eit_at(datetime(2026, 2, 1)) == "mparticle_id"
    assert SyncSettings(eit_timeline=[{"since": "2026-02-01", "eit": "mparticle_id"}]).eit_at(datetime(2026, 1, 1)) == "customer_id"
    with pytest.raises(SettingsError, match="same time"):
        SyncSettings.coerce({"eit_timeline": [{"since": "2026-02-01", "eit": "email"}, {"since": "2026-02-01", "eit": "other"}]})


def test_replace_validates():
    s = SyncSettings().replace(cadence="1h")
    assert s.cadence == timedelta(hours=1)
    with pytest.raises(SettingsError):
        SyncSettings().replace(fallback="x")


def test_a_time_given_as_a_number_is_read_as_the_loaders_read_epochs():
    """A settings time written as a number is epoch seconds, or milliseconds above 1e11, as the
    loaders and `-o as_of` read it (docs/settings.md): pydantic's own reading switched to
    milliseconds above 2e10, so 50000000000 was 1971 in a settings file and 3554 in a load."""
    from datetime import datetime, timezone

    from cohortlab.settings import SyncSettings

    cut = datetime(2026, 1, 15, tzinfo=timezone.utc)
    s = SyncSettings.model_validate({
        "start": 50_000_000_000, "event_identity_cutoff": 1_768_435_200_000, "reexport_at": [1_768_435_200],
        "pauses": [{"start": 1_768_435_200.0, "end": "2026-01-16"}],
        "eit_timeline": [{"eit": "customer_id"}, {"since": 1_768_435_200, "eit": "mparticle_id"}]})
    assert s.start.year == 3554
    assert s.event_identity_cutoff == cut and s.reexport_at == [cut] and s.pauses[0].start == cut
    assert s.eit_timeline[1].since == cut
