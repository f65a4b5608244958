"""Size limits of ticket fields, shared by the domain and the HTTP contract."""

TITLE_MAX = 300
DESCRIPTION_MAX = 20_000
COMMENT_MAX = 20_000
TAG_MAX = 50
TAGS_MAX = 30
CUSTOM_FIELDS_MAX = 50
CUSTOM_FIELD_KEY_MAX = 64
CUSTOM_FIELD_VALUE_MAX = 1_000
REASON_MAX = 2_000
TEAM_MAX = 100
NAME_MAX = 200
FILENAME_MAX = 255
#: Tickets one bulk job applies its action to (issue 17).
BULK_TICKETS_MAX = 10_000
#: One time entry's minutes: at most a working day and night (corrections
#: are a removal and a new entry, never a negative one).
TIME_ENTRY_MINUTES_MAX = 24 * 60
