"""The one chunk-job engine shared by exports and activities (see ``engine``)."""
