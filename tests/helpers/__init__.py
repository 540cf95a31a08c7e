"""Test-only helpers shared by several test files (the harnesses they drive are in
`mailroom_testing`): `matching_kit` for matching, filters and rules; `sync_support` for
sync tests (a company with one mailbox, database-equals-server checks, the CLI);
`mailbox_state` for the mailbox setup tests of every interface; `tiers` for the markers."""
