"""The family page (``callguard web``): the lists, the calls and the grooming alert from a phone
on the home network, behind one password. Its own process, reading and writing through the store
as the CLI does; it never talks to the screening daemon except through those files."""
