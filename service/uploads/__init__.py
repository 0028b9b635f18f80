"""The photo channel: resumable uploads (tus) into GridFS, apart from the sync pushes."""
