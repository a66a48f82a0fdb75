-- One open reservation per org and video: concurrent requests for the same
-- video from one org join the first instead of paying twice.
create unique index usage_records_open_video_idx on usage_records (org_id, video_id) where status = 'reserved';
