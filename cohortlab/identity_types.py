"""mParticle identity types: the canonical names (as the Events API spells them) and the other
spellings the Profile API, IDSync, CSV exports and warehouse tables use for the same type.

Loaders normalise every identity type to a canonical name with :data:`IDENTITY_TYPE_ALIASES`;
the simulation's recovery order (docs/rules.md#recovery-order) refers to these names."""

from __future__ import annotations

USER_IDENTITY_TYPES: tuple[str, ...] = (
    "customer_id", "email", "facebook", "twitter", "google", "microsoft", "yahoo", "other",
    *(f"other_id_{i}" for i in range(2, 11)),
    "mobile_number", "phone_number_2", "phone_number_3", "alias", "facebook_custom_audience_id",
)

DEVICE_IDENTITY_TYPES: tuple[str, ...] = (
    "ios_advertising_id", "ios_idfv", "android_advertising_id", "android_uuid", "push_token",
    "roku_advertising_id", "roku_publisher_id", "fire_advertising_id",
    "microsoft_advertising_id", "microsoft_publisher_id", "amp_id", "device_application_stamp",
)


def _aliases() -> dict[str, str]:
    a: dict[str, str] = {
        # IDSync / Profile API / other spellings -> Events API names (user identities)
        "customerid": "customer_id",
        "customer": "customer_id",
        "mobilenumber": "mobile_number",
        "mobile": "mobile_number",
        "facebookcustomaudienceid": "facebook_custom_audience_id",
        "other_id": "other",
        "other1": "other",
        "other_1": "other",
        "other_id_1": "other",
        "otherid": "other",
        "otherid1": "other",
        # device identities: IDSync known_identities and Firehose enum -> Events API device_info
        "ios_idfa": "ios_advertising_id",
        "idfa": "ios_advertising_id",
        "ios_vendor_id": "ios_idfv",
        "idfv": "ios_idfv",
        "android_aaid": "android_advertising_id",
        "google_advertising_id": "android_advertising_id",
        "android_id": "android_uuid",
        "roku_aid": "roku_advertising_id",
        "fire_aid": "fire_advertising_id",
        "apple_push_notification_token": "push_token",
        "google_cloud_messaging_token": "push_token",
    }
    for i in range(2, 11):
        for spelling in (f"other{i}", f"other_{i}", f"otherid{i}", f"otherid_{i}", f"other_id{i}"):
            a[spelling] = f"other_id_{i}"
    for i in (2, 3):
        for spelling in (f"phonenumber{i}", f"phonenumber_{i}", f"phone_number{i}", f"phone{i}"):
            a[spelling] = f"phone_number_{i}"
    return a


IDENTITY_TYPE_ALIASES: dict[str, str] = _aliases()
